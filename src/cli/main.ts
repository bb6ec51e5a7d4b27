import { Command, CommanderError } from "commander";
import { ERRORS, NetpolError } from "../errors.js";
import { formatDiagnostic } from "../policy/diagnostic.js";
import { errorDocument } from "../server/errors.js";
import { VERSION } from "../version.js";
import { fixFor } from "./fixes.js";
import { paint } from "./output.js";

type Register = (program: Command) => void;

/**
 * Each command's module, imported only when that command runs: `validate` needs zod and yaml,
 * not execa, fastify and prom-client (issue 11 measured 0.6 s of imports before any work).
 * The order is the order of `netpol --help`.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  validate: async () => (await import("./commands/validate.js")).registerValidate,
  render: async () => (await import("./commands/render.js")).registerRender,
  keygen: async () => (await import("./commands/keygen.js")).registerKeygen,
  "import-provider": async () =>
    (await import("./commands/import-provider.js")).registerImportProvider,
  plan: async () => (await import("./commands/plan.js")).registerPlan,
  apply: async () => (await import("./commands/apply.js")).registerApply,
  confirm: async () => (await import("./commands/apply.js")).registerApply,
  revert: async () => (await import("./commands/apply.js")).registerApply,
  "revert-unconfirmed": async () => (await import("./commands/apply.js")).registerApply,
  recover: async () => (await import("./commands/recover.js")).registerRecover,
  push: async () => (await import("./commands/push.js")).registerPush,
  down: async () => (await import("./commands/down.js")).registerDown,
  watch: async () => (await import("./commands/watch.js")).registerWatch,
  status: async () => (await import("./commands/status.js")).registerStatus,
  "show-policy": async () => (await import("./commands/show-policy.js")).registerShowPolicy,
  serve: async () => (await import("./commands/serve.js")).registerServe,
  publish: async () => (await import("./commands/publish.js")).registerPublish,
  agent: async () => (await import("./commands/agent.js")).registerAgent,
  rollout: async () => (await import("./commands/rollout.js")).registerRollout,
  rollback: async () => (await import("./commands/rollout.js")).registerRollback,
  fleet: async () => (await import("./commands/fleet.js")).registerFleet,
  demo: async () => (await import("./commands/demo.js")).registerDemo,
  completion: async () => (await import("./commands/completion.js")).registerCompletion,
};

/**
 * The whole tree for help, completion and unknown commands; just the one command otherwise;
 * none for --version.
 */
async function buildProgram(commandName: string | undefined): Promise<Command> {
  const program = new Command("netpol")
    .description("declarative tunnels and policy routing for a self-hosted router and VPS")
    .version(VERSION, "-V, --version", "print netpol's version")
    .showHelpAfterError()
    .exitOverride();
  if (commandName === "--version" || commandName === "-V") return program;
  const one = commandName && commandName !== "completion" ? COMMANDS[commandName] : undefined;
  const registers = await Promise.all(one ? [one()] : Object.values(COMMANDS).map((l) => l()));
  for (const register of new Set(registers)) register(program);
  return program;
}

/** User mistakes print one clear message, and the command that fixes them; only bugs a stack. */
function reportError(err: unknown, args: readonly string[]): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
  if (err instanceof NetpolError) {
    if (args.includes("--json")) {
      process.stdout.write(`${JSON.stringify(errorDocument(err), null, 2)}\n`);
      return err.exitCode;
    }
    // Another site's failure carries its own code in the message; this one's code goes first.
    const code = err.code === "NETPOL_E_REMOTE_FAILED" ? `${err.code}: ` : "";
    process.stderr.write(`${paint(process.stderr, "red", "netpol:")} ${code}${err.message}\n`);
    for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    const fix = fixFor(err, args);
    if (fix) process.stderr.write(`netpol: ${fix}\n`);
    return err.exitCode;
  }
  process.stderr.write(
    `netpol: internal error (NETPOL_E_INTERNAL, please report it):\n${err instanceof Error ? err.stack : String(err)}\n`,
  );
  return ERRORS.NETPOL_E_INTERNAL.exit;
}

// A reader that went away (`netpol plan … | head -1`), or a terminal that hung up (EIO: the
// SSH session dropped while an apply ran on, cli/signals.ts) is no error: the rest of the
// output is dropped and the command's own exit code stands.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (!["EPIPE", "EIO", "ERR_STREAM_DESTROYED"].includes(err.code ?? "")) throw err;
  });
}

async function main(args: readonly string[]): Promise<void> {
  try {
    const program = await buildProgram(args[0]);
    await program.parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err, args);
  }
}

// Not a top-level await: the bundle is CommonJS, for its V8 code cache (deploy/bundle.mjs).
void main(process.argv.slice(2));
