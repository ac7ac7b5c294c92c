// moat's web UI in a real browser. Run by go test ./internal/uitest,
// which builds the scene and passes its names in the environment. Each
// step prints its name; the first failed check stops the script with a
// message, a screenshot (artifacts/ui/FAILED-step.png) and exit status 1.
//
// A member goes first (their own access; every admin page refused), then
// an admin signs in and uses each page in turn.
import { join } from "node:path";
import { adminSuite } from "./admin.mjs";
import { closeAll, current, env, lastPage } from "./lib.mjs";
import { memberSuite } from "./member.mjs";

// The Go test's context is the backstop; this stops first, tidily.
const watchdog = setTimeout(() => {
  console.error(`FAIL: the UI tests took longer than 120 s (in step ${current})`);
  closeAll().finally(() => process.exit(1));
}, 120_000);

try {
  await memberSuite();
  await adminSuite();
  console.log("all UI checks passed");
} catch (e) {
  console.error(`FAIL in step ${current}: ${e.stack ?? e}`);
  await lastPage?.screenshot({ path: join(env("MOAT_ARTIFACTS"), `FAILED-${current}.png`), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await closeAll();
  clearTimeout(watchdog);
}
