/**
 * Runs before the whole suite: the server-side fixtures (.ci/fixtures.sh: TLS on the test
 * servers, the test roles and their pg_hba.conf rules), so `deno task test` works on its
 * own. The script checks before it changes anything, so a second run costs little.
 */
const FIXTURES = new URL("../.ci/fixtures.sh", import.meta.url).pathname;

export default async function setup(): Promise<void> {
  const result = await new Deno.Command("bash", {
    args: [FIXTURES],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const printed = decoder.decode(result.stdout).trim();
  if (printed) console.log(printed);
  if (!result.success) {
    throw new Error(`.ci/fixtures.sh failed:\n${decoder.decode(result.stderr)}`);
  }
}
