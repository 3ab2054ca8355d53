// @ts-check
/**
 * The whiteboard of the call: tools, the canvas both sides draw on (over a
 * background document), page navigation and the correspondent's pointer.
 * Coordinates sent and received are fractions of the board (0..1).
 */

import { BoardState, PALETTE, WIDTHS, fitBoard, newStrokeId } from "./board.js";
import { t } from "./i18n.js";
import { boardPageUrl, boardUploadUrl } from "./protocol.js";

/** @typedef {import("./protocol.js").SignalingClient} SignalingClient */

const FLUSH_MS = 40; // stroke chunks and pointer positions: ~25 a second
const MAX_POINTS = 2000; // the server's default whiteboard.max_points_per_stroke
const COLOUR_NAMES = ["black", "red", "blue", "green", "yellow", "white"];
const WIDTH_NAMES = ["thin", "medium", "thick"];

/**
 * @param {string} tag @param {Record<string, string>} attrs @param {(Node|string)[]} children
 * @returns {HTMLElement}
 */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export class WhiteboardUI {
  /**
   * @param {SignalingClient} client
   * @param {HTMLElement} stage where the board goes (the call's picture area)
   * @param {HTMLElement} toggle the toolbar's `whiteboard-toggle` button
   */
  constructor(client, stage, toggle) {
    this.client = client;
    this.stage = stage;
    this.toggle = toggle;
    this.state = new BoardState();
    this.tool = /** @type {"pen"|"eraser"} */ ("pen");
    this.color = PALETTE[1];
    this.width = WIDTHS[1];
    /** @type {{id: string, points: number[], pending: number[], timer: number}|null} our stroke being drawn */
    this.drawing = null;
    /** @type {string|null} the id of our last stroke, to drop it if the server refuses it */
    this.lastStroke = null;
    /** @type {Set<string>} strokes the eraser went over, sent when it lifts */
    this.erasing = new Set();
    this.erasingActive = false;
    this.pointerSent = 0;
    /** @type {{x: number, y: number}|null} */
    this.pointerPending = null;
    /** @type {number|undefined} */
    this.pointerTimer = undefined;
    /** @type {{role: string, sheet: string, x: number, y: number}|null} */
    this.remote = null;
    /** @type {Map<string, HTMLImageElement>} */
    this.images = new Map();
    this.frame = 0;
    /** @type {HTMLCanvasElement|null} the page and the saved strokes, drawn once per change */
    this.base = null;
    this.dirty = true;
    this.build();
    this.wire();
    this.render();
  }

  build() {
    const tools = el("div", { class: "board-tools", role: "toolbar", "data-i18n-aria": "wb.tools" });
    this.colourButtons = PALETTE.map((colour, i) => {
      const b = el("button", { type: "button", class: "swatch", "data-testid": `whiteboard-color-${COLOUR_NAMES[i]}`,
        "data-color": colour, "aria-pressed": "false", "data-i18n-aria": `wb.color.${COLOUR_NAMES[i]}` });
      b.style.setProperty("--swatch", colour);
      b.addEventListener("click", () => { this.color = colour; this.tool = "pen"; this.renderTools(); });
      return b;
    });
    this.widthButtons = WIDTHS.map((width, i) => {
      const b = el("button", { type: "button", class: `width width-${i}`, "data-testid": `whiteboard-width-${WIDTH_NAMES[i]}`,
        "aria-pressed": "false", "data-i18n-aria": `wb.width.${WIDTH_NAMES[i]}` }, el("span", { "aria-hidden": "true" }));
      b.addEventListener("click", () => { this.width = width; this.tool = "pen"; this.renderTools(); });
      return b;
    });
    this.eraser = el("button", { type: "button", "data-testid": "whiteboard-eraser", "aria-pressed": "false",
      "data-i18n": "wb.eraser", "data-i18n-title": "wb.eraser.title" });
    this.eraser.addEventListener("click", () => { this.tool = this.tool === "eraser" ? "pen" : "eraser"; this.renderTools(); });
    this.undo = el("button", { type: "button", "data-testid": "whiteboard-undo", "data-i18n": "wb.undo", "data-i18n-title": "wb.undo.title" });
    this.undo.addEventListener("click", () => this.client.whiteboardUndo());
    this.redo = el("button", { type: "button", "data-testid": "whiteboard-redo", "data-i18n": "wb.redo", "data-i18n-title": "wb.redo.title" });
    this.redo.addEventListener("click", () => this.client.whiteboardRedo());
    this.clear = el("button", { type: "button", "data-testid": "whiteboard-clear", "aria-haspopup": "dialog", "data-i18n": "wb.clear", "data-i18n-title": "wb.clear.title" });
    this.clear.addEventListener("click", () => this.confirm.showModal());
    this.file = /** @type {HTMLInputElement} */ (el("input", { type: "file", class: "visually-hidden", "data-testid": "whiteboard-file",
      accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf,.pdf", "data-i18n-aria": "wb.file" }));
    this.file.addEventListener("change", () => this.upload());
    const fileLabel = el("label", { class: "button-like" }, el("span", { "data-i18n": "wb.file.button" }), this.file);
    this.prev = el("button", { type: "button", "data-testid": "whiteboard-prev", "data-i18n-aria": "wb.prev" }, "‹");
    this.prev.addEventListener("click", () => this.client.whiteboardPage(this.state.page - 1));
    this.next = el("button", { type: "button", "data-testid": "whiteboard-next", "data-i18n-aria": "wb.next" }, "›");
    this.next.addEventListener("click", () => this.client.whiteboardPage(this.state.page + 1));
    this.pageLabel = el("span", { class: "page-label", "data-testid": "whiteboard-page", "aria-live": "polite" });
    this.pages = el("span", { class: "pages" }, this.prev, this.pageLabel, this.next);
    this.removeBg = el("button", { type: "button", "data-testid": "whiteboard-background-remove", "data-i18n": "wb.blank", "data-i18n-title": "wb.blank.title" });
    this.removeBg.addEventListener("click", () => this.client.whiteboardBackgroundRemove());
    this.save = el("button", { type: "button", "data-testid": "whiteboard-save", "data-i18n": "wb.save", "data-i18n-title": "wb.save.title", hidden: "" });
    this.save.addEventListener("click", () => { this.save.setAttribute("disabled", ""); this.client.whiteboardSave(); });
    tools.append(el("span", { class: "group" }, ...this.colourButtons), el("span", { class: "group" }, ...this.widthButtons),
      this.eraser, this.undo, this.redo, this.clear, fileLabel, this.pages, this.removeBg, this.save);

    this.canvas = /** @type {HTMLCanvasElement} */ (el("canvas", { "data-testid": "whiteboard-canvas", role: "img", "data-i18n-aria": "wb.canvas" }));
    this.pointerEl = el("div", { class: "remote-pointer", "data-testid": "remote-pointer", hidden: "" }, el("span", { class: "label" }));
    this.surface = el("div", { class: "board-surface", "data-testid": "whiteboard-surface" }, this.canvas, this.pointerEl);
    this.area = el("div", { class: "board-area" }, this.surface);
    this.status = el("p", { class: "board-status", "data-testid": "whiteboard-status", role: "status", "aria-live": "polite" });
    this.panel = el("div", { class: "board", "data-testid": "whiteboard", hidden: "" }, tools, this.area, this.status);
    this.confirm = /** @type {HTMLDialogElement} */ (el("dialog", { class: "devices-dialog", "data-testid": "whiteboard-clear-dialog", "aria-labelledby": "wb-clear-title" },
      el("h2", { id: "wb-clear-title", "data-i18n": "wb.clear.confirm" }),
      el("p", { "data-i18n": "wb.clear.text" }),
      el("div", { class: "row" },
        el("button", { type: "button", "data-testid": "whiteboard-clear-cancel", "data-i18n": "wb.cancel" }),
        el("button", { type: "button", class: "danger", "data-testid": "whiteboard-clear-confirm", "data-i18n": "wb.clear" }))));
    this.stage.append(this.panel);
    this.stage.after(this.confirm);
  }

  wire() {
    const c = this.client;
    this.toggle.addEventListener("click", () => c.whiteboardOpen(!this.state.open));
    const [cancel, ok] = this.confirm.querySelectorAll("button");
    cancel.addEventListener("click", () => this.confirm.close());
    ok.addEventListener("click", () => { this.confirm.close(); c.whiteboardClear(); });
    c.addEventListener("welcome", () => { this.save.hidden = c.welcome?.role !== "practitioner"; });
    c.addEventListener("whiteboard", (ev) => { this.state.applyFull(/** @type {CustomEvent} */ (ev).detail); this.render(); });
    c.addEventListener("whiteboard-changes", (ev) => {
      const msg = /** @type {CustomEvent} */ (ev).detail;
      if (this.drawing && msg.remove.includes(this.drawing.id)) this.stopDrawing(); // refused (board full)
      this.state.applyChanges(msg);
      this.render();
    });
    c.addEventListener("whiteboard-live", (ev) => { this.state.applyLive(/** @type {CustomEvent} */ (ev).detail); this.paint(); });
    c.addEventListener("pointer", (ev) => {
      const msg = /** @type {CustomEvent} */ (ev).detail;
      this.remote = msg.x === null ? null : msg;
      this.placePointer();
    });
    c.addEventListener("whiteboard-saved", () => { this.save.removeAttribute("disabled"); this.say("wb.saved"); });
    c.addEventListener("error", (ev) => {
      const msg = /** @type {CustomEvent} */ (ev).detail;
      if (!String(msg.ref_type ?? "").startsWith("whiteboard")) return;
      this.save.removeAttribute("disabled");
      if (msg.ref_type === "whiteboard-stroke" && this.lastStroke && !this.state.strokes.has(this.lastStroke)) {
        // our stroke was refused (e.g. the board is full): it is not on the board, so not on our screen either
        this.state.live.delete(this.lastStroke);
        if (this.drawing?.id === this.lastStroke) this.stopDrawing();
        this.paint();
      }
      this.say(msg.ref_type === "whiteboard-stroke" && /at most/.test(msg.message) ? "wb.full" : "wb.refused");
    });

    const cv = this.canvas;
    cv.addEventListener("pointerdown", (ev) => this.down(ev));
    cv.addEventListener("pointermove", (ev) => this.move(ev));
    cv.addEventListener("pointerup", (ev) => this.up(ev));
    cv.addEventListener("pointercancel", (ev) => this.up(ev));
    this.surface.addEventListener("pointerleave", () => this.leave());
    new ResizeObserver(() => this.layout()).observe(this.area);
  }

  /** @param {string} key */
  say(key) {
    this.status.textContent = t(key);
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => { this.status.textContent = ""; }, 5000);
  }

  /** Fractions of the board under a pointer event. @param {PointerEvent} ev */
  at(ev) {
    const r = this.canvas.getBoundingClientRect();
    const clamp = (/** @type {number} */ v) => Math.min(1, Math.max(0, v));
    return { x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height) };
  }

  /** @param {PointerEvent} ev */
  down(ev) {
    if (ev.button !== 0 || !this.state.open) return;
    this.canvas.setPointerCapture(ev.pointerId);
    const { x, y } = this.at(ev);
    if (this.tool === "eraser") {
      this.erasingActive = true;
      this.erasing.clear();
      this.eraseAt(x, y);
      return;
    }
    if (this.drawing) this.flush(true); // a second finger: the first stroke ends
    const id = newStrokeId();
    this.lastStroke = id;
    this.drawing = { id, points: [x, y], pending: [x, y], timer: window.setInterval(() => this.flush(false), FLUSH_MS) };
    this.state.live.set(id, { id, author: this.client.welcome?.role ?? "", sheet: this.state.sheet, color: this.color, width: this.width, points: this.drawing.points });
    this.paint();
  }

  /** @param {PointerEvent} ev */
  move(ev) {
    const { x, y } = this.at(ev);
    this.sharePointer(x, y);
    if (this.erasingActive) { this.eraseAt(x, y); return; }
    const d = this.drawing;
    if (!d) return;
    const n = d.points.length;
    const r = this.canvas.getBoundingClientRect();
    // skip moves of less than a pixel: fewer points, same line
    if (Math.hypot((x - d.points[n - 2]) * r.width, (y - d.points[n - 1]) * r.height) < 1) return;
    if (n / 2 >= MAX_POINTS) { this.flush(true); return; }
    d.points.push(x, y);
    d.pending.push(x, y);
    this.paint();
  }

  /** @param {PointerEvent} ev */
  up(ev) {
    if (this.canvas.hasPointerCapture(ev.pointerId)) this.canvas.releasePointerCapture(ev.pointerId);
    if (this.erasingActive) {
      this.erasingActive = false;
      if (this.erasing.size) this.client.whiteboardErase([...this.erasing]);
      this.erasing.clear();
      this.paint(true);
      return;
    }
    if (this.drawing) this.flush(true);
  }

  /** Send the points gathered since the last chunk; `end` finishes the stroke. @param {boolean} end */
  flush(end) {
    const d = this.drawing;
    if (!d) return;
    if (d.pending.length || end) {
      this.client.whiteboardStroke({ stroke: d.id, page: this.state.page, color: this.color, width: this.width, points: d.pending, end });
      d.pending = [];
    }
    if (end) this.stopDrawing(); // the stroke stays shown until the server's whiteboard-changes replaces it
  }

  stopDrawing() {
    if (this.drawing) clearInterval(this.drawing.timer);
    this.drawing = null;
  }

  /** @param {number} x @param {number} y */
  eraseAt(x, y) {
    const r = this.canvas.getBoundingClientRect();
    const before = this.erasing.size;
    for (const id of this.state.hit(x, y, 8 / Math.max(r.width, 1), r.width / Math.max(r.height, 1))) this.erasing.add(id);
    if (this.erasing.size !== before) this.paint(true);
  }

  /** Throttled to one position every FLUSH_MS (the server drops more than its rate). @param {number} x @param {number} y */
  sharePointer(x, y) {
    this.pointerPending = { x, y };
    if (this.pointerTimer !== undefined) return;
    const wait = Math.max(0, this.pointerSent + FLUSH_MS - performance.now());
    this.pointerTimer = window.setTimeout(() => {
      this.pointerTimer = undefined;
      const p = this.pointerPending;
      this.pointerPending = null;
      if (!p) return;
      this.pointerSent = performance.now();
      this.client.pointer(Math.round(p.x * 1e5) / 1e5, Math.round(p.y * 1e5) / 1e5);
    }, wait);
  }

  leave() {
    this.pointerPending = null;
    if (this.state.open) this.client.pointer(null, null);
  }

  /** Language changed: the labels made here. */
  translate() { this.render(); }

  // drawing the page

  render() {
    const s = this.state;
    this.panel.hidden = !s.open;
    this.stage.classList.toggle("board-open", s.open);
    this.toggle.setAttribute("aria-pressed", String(s.open));
    const label = t(s.open ? "wb.close" : "wb.open");
    this.toggle.setAttribute("aria-label", label);
    this.toggle.title = label;
    if (!s.open) this.stopDrawing();
    this.undo.toggleAttribute("disabled", !s.canUndo);
    this.redo.toggleAttribute("disabled", !s.canRedo);
    const pages = s.background?.pages ?? 1;
    this.pages.hidden = pages < 2;
    this.pageLabel.textContent = t("wb.page", { n: String(s.page + 1), total: String(pages) });
    this.prev.toggleAttribute("disabled", s.page <= 0);
    this.next.toggleAttribute("disabled", s.page >= pages - 1);
    this.removeBg.hidden = !s.background;
    this.renderTools();
    this.layout();
    this.placePointer();
  }

  renderTools() {
    this.colourButtons.forEach((b, i) => b.setAttribute("aria-pressed", String(this.tool === "pen" && PALETTE[i] === this.color)));
    this.widthButtons.forEach((b, i) => b.setAttribute("aria-pressed", String(this.tool === "pen" && WIDTHS[i] === this.width)));
    this.eraser.setAttribute("aria-pressed", String(this.tool === "eraser"));
    this.canvas.classList.toggle("erasing", this.tool === "eraser");
  }

  /** Size the surface to the largest board of the right aspect that fits, then repaint. */
  layout() {
    if (!this.state.open) return;
    const { width, height } = fitBoard(this.area.clientWidth, this.area.clientHeight, this.state.aspect());
    if (width <= 0 || height <= 0) return;
    this.surface.style.width = `${width}px`;
    this.surface.style.height = `${height}px`;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(width * dpr), h = Math.round(height * dpr);
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
    this.paint(true);
    this.placePointer();
  }

  /**
   * Repaint on the next frame (many chunks, one paint). `invalidate`: the saved strokes,
   * the page or the size changed, so the cached picture under the live strokes is redrawn.
   * @param {boolean} [invalidate]
   */
  paint(invalidate = false) {
    if (invalidate) this.dirty = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  /** The background page, if any: loaded once, repaint when it arrives. @returns {HTMLImageElement|null} */
  backgroundImage() {
    const s = this.state;
    if (!s.background) return null;
    const url = boardPageUrl(location, s.background.id, s.page);
    let img = this.images.get(url);
    if (!img) {
      img = new Image();
      img.addEventListener("load", () => this.paint(true));
      img.src = url;
      this.images.set(url, img);
    }
    return img.complete && img.naturalWidth ? img : null;
  }

  /** The page and its saved strokes are drawn once into `base`; each frame adds only the strokes being drawn. */
  draw() {
    const cv = this.canvas;
    const w = cv.width, h = cv.height;
    const base = this.base ?? (this.base = document.createElement("canvas"));
    if (this.dirty || base.width !== w || base.height !== h) {
      base.width = w;
      base.height = h;
      const g = /** @type {CanvasRenderingContext2D} */ (base.getContext("2d"));
      g.fillStyle = "#ffffff";
      g.fillRect(0, 0, w, h);
      const bg = this.backgroundImage();
      if (bg) g.drawImage(bg, 0, 0, w, h);
      const saved = [...this.state.strokes.values()].filter((st) => st.sheet === this.state.sheet);
      this.strokes(g, saved, w, h);
      this.dirty = Boolean(this.state.background) && !bg; // the page is still loading: draw again when it comes
    }
    const g = /** @type {CanvasRenderingContext2D} */ (cv.getContext("2d"));
    g.drawImage(base, 0, 0);
    this.strokes(g, [...this.state.live.values()].filter((st) => st.sheet === this.state.sheet), w, h);
  }

  /**
   * @param {CanvasRenderingContext2D} g @param {import("./board.js").Stroke[]} list
   * @param {number} w @param {number} h
   */
  strokes(g, list, w, h) {
    g.lineCap = "round";
    g.lineJoin = "round";
    for (const s of list) {
      g.globalAlpha = this.erasing.has(s.id) ? 0.3 : 1;
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      g.lineWidth = Math.max(1, s.width * w);
      const p = s.points;
      g.beginPath();
      if (p.length === 2) {
        g.arc(p[0] * w, p[1] * h, g.lineWidth / 2, 0, 2 * Math.PI);
        g.fill();
        continue;
      }
      g.moveTo(p[0] * w, p[1] * h);
      for (let i = 2; i < p.length; i += 2) g.lineTo(p[i] * w, p[i + 1] * h);
      g.stroke();
    }
    g.globalAlpha = 1;
  }

  placePointer() {
    const r = this.remote;
    const show = Boolean(r && this.state.open && r.sheet === this.state.sheet);
    this.pointerEl.hidden = !show;
    if (!r || !show) return;
    this.pointerEl.style.left = `${r.x * this.surface.clientWidth}px`;
    this.pointerEl.style.top = `${r.y * this.surface.clientHeight}px`;
    /** @type {HTMLElement} */ (this.pointerEl.querySelector(".label")).textContent = t(`role.${r.role}`);
    this.pointerEl.setAttribute("aria-label", t("wb.pointer", { who: t(`role.${r.role}`) }));
  }

  async upload() {
    const file = this.file.files?.[0];
    this.file.value = "";
    if (!file) return;
    this.say("wb.uploading");
    try {
      const reply = await fetch(boardUploadUrl(location), { method: "POST", body: file });
      if (reply.ok) { this.say("wb.uploaded"); return; }
      const body = await reply.json().catch(() => ({}));
      this.say(reply.status === 413 ? "wb.too-large" : body.error === "bad-type" ? "wb.bad-type"
        : body.error === "too-many" ? "wb.too-many" : body.error === "disk-full" ? "wb.disk-full" : "wb.upload-failed");
    } catch {
      this.say("wb.upload-failed");
    }
  }
}
