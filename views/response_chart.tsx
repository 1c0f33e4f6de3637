/**
 * Response times of a source's recent connection tests, drawn as inline SVG: no chart
 * library, no request, readable by a screen reader through its title and summary.
 */
import { formatDate, formatMs } from "./_format.ts";

export type TestPoint = {
  testedAt: Date;
  success: boolean;
  responseTime: number;
  errorCode: string | null;
};

const WIDTH = 640;
const HEIGHT = 180;
const PAD = { top: 14, right: 12, bottom: 26, left: 52 };

/** A round upper bound for the axis: 1, 2 or 5 times a power of ten. */
function niceCeiling(value: number): number {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The chart, oldest test on the left; failures are red marks on the axis. */
export function ResponseChart(props: { tests: TestPoint[] }) {
  const { tests } = props;
  if (tests.length === 0) {
    return (
      <p class="muted chart-empty">
        No connection tests yet: test the connection to start the chart.
      </p>
    );
  }
  const times = tests.filter((test) => test.success).map((test) => test.responseTime);
  const top = niceCeiling(Math.max(1, ...times) * 1.1);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (index: number) =>
    PAD.left + (tests.length === 1 ? plotWidth / 2 : (index / (tests.length - 1)) * plotWidth);
  const y = (ms: number) => PAD.top + plotHeight - (ms / top) * plotHeight;
  const points = tests.map((test, index) => ({ test, cx: x(index), cy: y(test.responseTime) }));
  const line = points.filter((point) => point.test.success)
    .map((point) => `${point.cx.toFixed(1)},${point.cy.toFixed(1)}`).join(" ");
  const failures = tests.length - times.length;
  const summary = tests.length === 1
    ? `1 test at ${formatDate(tests[0].testedAt)}: ${times.length ? formatMs(times[0]) : "failed"}.`
    : times.length
    ? `${tests.length} tests from ${formatDate(tests[0].testedAt)} to ${
      formatDate(tests[tests.length - 1].testedAt)
    }: median ${formatMs(median(times))}, fastest ${formatMs(Math.min(...times))}, slowest ${
      formatMs(Math.max(...times))
    }${failures ? `, ${failures} failed` : ""}.`
    : `${tests.length} tests, all failed.`;
  const gridLines = [0, 0.5, 1].map((share) => top * share);
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-labelledby="chart-title chart-summary"
      >
        <title id="chart-title">Response time of recent connection tests</title>
        <desc id="chart-summary">{summary}</desc>
        {gridLines.map((ms) => (
          <g class="grid-line">
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(ms)} y2={y(ms)} />
            <text x={PAD.left - 6} y={y(ms) + 4} text-anchor="end">{formatMs(ms)}</text>
          </g>
        ))}
        {line && <polyline class="series" points={line} />}
        {points.map((point) =>
          point.test.success
            ? (
              <circle class="ok" cx={point.cx.toFixed(1)} cy={point.cy.toFixed(1)} r="3">
                <title>
                  {`${formatDate(point.test.testedAt)}: ${formatMs(point.test.responseTime)}`}
                </title>
              </circle>
            )
            : (
              <path
                class="failed"
                d={`M${(point.cx - 4).toFixed(1)} ${HEIGHT - PAD.bottom - 4}l8 8m0 -8l-8 8`}
              >
                <title>
                  {`${formatDate(point.test.testedAt)}: failed (${
                    point.test.errorCode ?? "error"
                  })`}
                </title>
              </path>
            )
        )}
        <text class="axis-label" x={PAD.left} y={HEIGHT - 6}>{formatDate(tests[0].testedAt)}</text>
        <text class="axis-label" x={WIDTH - PAD.right} y={HEIGHT - 6} text-anchor="end">
          {formatDate(tests[tests.length - 1].testedAt)}
        </text>
      </svg>
      <figcaption class="muted small">{summary}</figcaption>
    </figure>
  );
}
