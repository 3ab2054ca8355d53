// @ts-check
/** Finding the page's elements by their `data-testid` hook (UI-CONTRACT.md): the one lookup every module uses. */

/** The element with this hook; the page is expected to have it. @param {string} id */
export const byTestId = (id) => /** @type {HTMLElement} */ (document.querySelector(`[data-testid="${id}"]`));

/** The element with this hook, or null where a page may leave it out. @param {string} id */
export const findByTestId = (id) => /** @type {HTMLElement|null} */ (document.querySelector(`[data-testid="${id}"]`));
