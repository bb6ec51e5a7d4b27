// The page's only script: it keeps the server-drawn regions current from the event stream and
// sends the page's few actions with the session's CSRF token. Without it the page still reads.

interface Update {
  readonly at: string;
  readonly regions: Readonly<Record<string, string>>;
}

const csrf = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? "";
const live = document.getElementById("live");
const notice = document.getElementById("notice");
const readOnly = live?.dataset.role === "viewer" ? " · read-only" : "";

const say = (text: string, problem = false) => {
  if (!notice) return;
  notice.textContent = text;
  notice.className = problem ? "problem" : "";
};

/** Streamed regions come without the token (one rendering serves every session). */
function fillCsrf(root: ParentNode): void {
  for (const input of root.querySelectorAll<HTMLInputElement>('input[name="csrf"]'))
    input.value = csrf;
}

function tickDeadlines(): void {
  for (const el of document.querySelectorAll<HTMLElement>("[data-deadline]")) {
    const left = Math.round((Date.parse(el.dataset.deadline ?? "") - Date.now()) / 1000);
    el.textContent = left > 0 ? ` (in ${left} s)` : " (now)";
  }
}

function apply(update: Update): void {
  for (const [name, markup] of Object.entries(update.regions)) {
    const region = document.querySelector<HTMLElement>(`[data-region="${name}"]`);
    if (!region) continue;
    region.innerHTML = markup;
    fillCsrf(region);
  }
  tickDeadlines();
  if (live) live.textContent = `live · as of ${update.at.slice(11, 19)} UTC${readOnly}`;
}

function listen(): void {
  const stream = new EventSource("/events");
  stream.addEventListener("regions", (e) => apply(JSON.parse((e as MessageEvent).data) as Update));
  stream.addEventListener("error", () => {
    if (!live) return;
    // A closed stream is not retried by the browser: the session is gone (401).
    live.textContent =
      stream.readyState === EventSource.CLOSED
        ? "disconnected: reload the page to log in again"
        : "reconnecting…";
  });
}

const DONE: Record<string, (body: Record<string, unknown>) => string> = {
  "/confirm": () => "Confirmed: the apply stays.",
  "/revert": () => "Reverted: the state before the apply is back.",
  "/reapply": (b) =>
    b.changed
      ? "Re-applied: the policy in force is back in place."
      : "Re-applied: nothing to change.",
};

async function act(form: HTMLFormElement): Promise<void> {
  const action = form.getAttribute("action") ?? "";
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  say("working…");
  try {
    const r = await fetch(action, {
      method: "POST",
      headers: { "x-csrf-token": csrf },
      credentials: "same-origin",
    });
    const body = (await r.json().catch(() => ({}))) as Record<string, unknown>;
    const error = body.error as { message?: string } | undefined;
    if (r.ok) say(DONE[action]?.(body) ?? "Done.");
    else say(error?.message ?? `refused (HTTP ${r.status})`, true);
  } catch {
    say("the server did not answer", true);
  } finally {
    if (button) button.disabled = false;
  }
}

document.addEventListener("submit", (e) => {
  const form = e.target as HTMLFormElement;
  // Logging in and out leave the page: the plain form post and its redirect do that.
  if (!((form.getAttribute("action") ?? "") in DONE)) return;
  e.preventDefault();
  void act(form);
});

// The login form has no regions to keep current.
if (document.querySelector("[data-region]")) {
  tickDeadlines();
  setInterval(tickDeadlines, 1000);
  listen();
}
