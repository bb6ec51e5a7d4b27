import { Command, CommanderError } from "commander";
import { ERRORS, NetpolError } from "../errors.js";
import { formatDiagnostic } from "../policy/diagnostic.js";
import { registerApply } from "./commands/apply.js";
import { registerDemo } from "./commands/demo.js";
import { registerKeygen } from "./commands/keygen.js";
import { registerPlan } from "./commands/plan.js";
import { registerRecover } from "./commands/recover.js";
import { registerRender } from "./commands/render.js";
import { registerServe } from "./commands/serve.js";
import { registerStatus } from "./commands/status.js";
import { registerValidate } from "./commands/validate.js";
import { registerWatch } from "./commands/watch.js";

const program = new Command("netpol")
  .description("declarative tunnels and policy routing for a self-hosted router and VPS")
  .showHelpAfterError()
  .exitOverride();

registerValidate(program);
registerRender(program);
registerKeygen(program);
registerPlan(program);
registerApply(program);
registerWatch(program);
registerStatus(program);
registerServe(program);
registerRecover(program);
registerDemo(program);

/** User mistakes print one clear message per problem; only bugs print a stack. */
function report(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
  if (err instanceof NetpolError) {
    process.stderr.write(`netpol: ${err.message}\n`);
    for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    return err.exitCode;
  }
  process.stderr.write(
    `netpol: internal error (NETPOL_E_INTERNAL, please report it):\n${err instanceof Error ? err.stack : String(err)}\n`,
  );
  return ERRORS.NETPOL_E_INTERNAL.exit;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}
