/**
 * The Deno flags `deno task start` runs the app with (the `--v8-flags=...` of the start task
 * in deno.json), so a benchmark that starts the app or a sync process runs it as an operator
 * would, and the two cannot drift apart.
 */
export async function startTaskV8Flags(): Promise<string> {
  const deno = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  return /--v8-flags=(\S+)/.exec(deno.tasks.start)?.[1] ?? "";
}
