// @ts-check
/**
 * Keyboard focus and modal dialogs: Tab and Shift+Tab cycle inside the open modal
 * <dialog> (Chromium lets the focus fall out to the page's body, where nothing can
 * be reached since the rest is inert). Giving the focus back to the opener on close
 * is the browser's own (HTML's dialog focus restoration): tests/e2e/test_interface.py checks both.
 */

const FOCUSABLE = "button, [href], input, select, textarea, summary, [tabindex]:not([tabindex='-1'])";

/** @param {HTMLElement} root @returns {HTMLElement[]} what Tab can reach inside root, in order */
function focusables(root) {
  return /** @type {HTMLElement[]} */ ([...root.querySelectorAll(FOCUSABLE)])
    .filter((el) => !el.hasAttribute("disabled") && el.getClientRects().length > 0);
}

/** @param {KeyboardEvent} ev */
function cycle(ev) {
  if (ev.key !== "Tab") return;
  const dialog = /** @type {HTMLDialogElement|null} */ (document.querySelector("dialog:modal"));
  if (!dialog) return;
  const items = focusables(dialog);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  const active = document.activeElement;
  const outside = !dialog.contains(active);
  if (ev.shiftKey && (outside || active === first)) {
    ev.preventDefault();
    last.focus();
  } else if (!ev.shiftKey && (outside || active === last)) {
    ev.preventDefault();
    first.focus();
  }
}

/** Install the trap once for the page (it covers dialogs created later too). */
export function trapDialogFocus() {
  document.addEventListener("keydown", cycle, true);
}
