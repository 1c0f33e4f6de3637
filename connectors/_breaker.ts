/**
 * One circuit breaker per source (cockatiel): after repeated failures calls stop reaching
 * the source for a while (exponential backoff), then one call probes it again.
 */
import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
} from "cockatiel";

/** Consecutive failures that open a source's circuit. */
export const FAILURES_TO_OPEN = 5;

/** Thrown inside the breaker so it counts a failure that the connector returned as a value. */
export class CountedFailure<T> extends Error {
  constructor(readonly value: T) {
    super("counted failure");
  }
}

const breakers = new Map<string, CircuitBreakerPolicy>();

export function breakerFor(sourceId: string): CircuitBreakerPolicy {
  let breaker = breakers.get(sourceId);
  if (!breaker) {
    breaker = circuitBreaker(handleWhen((error) => error instanceof CountedFailure), {
      halfOpenAfter: new ExponentialBackoff({ initialDelay: 1_000, maxDelay: 60_000 }),
      breaker: new ConsecutiveBreaker(FAILURES_TO_OPEN),
    });
    breakers.set(sourceId, breaker);
  }
  return breaker;
}

export function forgetBreaker(sourceId: string): void {
  breakers.delete(sourceId);
}

export function breakerState(sourceId: string): "closed" | "open" | "half-open" {
  const state = breakers.get(sourceId)?.state;
  if (state === CircuitState.Open || state === CircuitState.Isolated) return "open";
  if (state === CircuitState.HalfOpen) return "half-open";
  return "closed";
}

/**
 * Runs `call` under the source's breaker. `failed(value)` tells whether a returned value is
 * a failure to count. Returns `{ open: true }` without calling when the circuit is open.
 */
export async function throughBreaker<T>(
  sourceId: string,
  call: () => Promise<T>,
  failed: (value: T) => boolean,
): Promise<{ open: false; value: T } | { open: true }> {
  try {
    const value = await breakerFor(sourceId).execute(async () => {
      const value = await call();
      if (failed(value)) throw new CountedFailure(value);
      return value;
    });
    return { open: false, value };
  } catch (error) {
    if (error instanceof CountedFailure) return { open: false, value: error.value as T };
    if (error instanceof BrokenCircuitError) return { open: true };
    throw error;
  }
}
