// @ts-check
/**
 * The whiteboard's state in the browser, DOM-free: what the server said
 * (docs/protocol.md, "Whiteboard") plus the strokes being drawn.
 */

/** @typedef {{id: string, author: string, sheet: string, color: string, width: number, points: number[]}} Stroke */
/** @typedef {{id: string, kind: "image"|"pdf", pages: number, sizes: number[][]}} Background */

export const PALETTE = ["#1b2733", "#c62828", "#0b6bcb", "#2e7d32", "#f9a825", "#ffffff"];
/** Pen widths offered, as fractions of the board's width. */
export const WIDTHS = [0.003, 0.008, 0.02];
/** Blank board without a background: 4:3. */
export const BLANK_ASPECT = 4 / 3;

export class BoardState {
  constructor() {
    this.open = false;
    this.page = 0;
    this.sheet = "blank";
    /** @type {Background|null} */
    this.background = null;
    /** @type {Map<string, Stroke>} saved strokes, in drawing order */
    this.strokes = new Map();
    /** @type {Map<string, Stroke>} strokes being drawn (ours and the other side's) */
    this.live = new Map();
    this.canUndo = false;
    this.canRedo = false;
  }

  /** @param {any} msg */
  settings(msg) {
    this.open = Boolean(msg.open);
    this.page = msg.page;
    this.sheet = msg.sheet;
    this.background = msg.background;
    this.canUndo = Boolean(msg.can_undo);
    this.canRedo = Boolean(msg.can_redo);
  }

  /** `whiteboard`: everything, e.g. after a reload. @param {any} msg */
  applyFull(msg) {
    this.settings(msg);
    this.strokes = new Map(msg.strokes.map((/** @type {Stroke} */ s) => [s.id, s]));
    this.live = new Map(msg.live.map((/** @type {Stroke} */ s) => [s.id, { ...s, points: [...s.points] }]));
  }

  /** `whiteboard-changes`. @param {any} msg */
  applyChanges(msg) {
    this.settings(msg);
    for (const id of msg.remove) { this.strokes.delete(id); this.live.delete(id); }
    for (const s of msg.add) { this.live.delete(s.id); this.strokes.set(s.id, s); }
  }

  /** `whiteboard-live`: a chunk of the other side's stroke. @param {any} msg */
  applyLive(msg) {
    let s = this.live.get(msg.stroke);
    if (!s) {
      if (this.strokes.has(msg.stroke)) return;
      s = { id: msg.stroke, author: msg.author, sheet: msg.sheet, color: msg.color, width: msg.width, points: [] };
      this.live.set(s.id, s);
    }
    s.points.push(...msg.points);
  }

  /** The board's width / height: the background page's, or 4:3. */
  aspect() {
    const size = this.background?.sizes[this.page];
    return size ? size[0] / size[1] : BLANK_ASPECT;
  }

  /** What is drawn on the current sheet, oldest first. @returns {Stroke[]} */
  sheetStrokes() {
    return [...this.strokes.values(), ...this.live.values()].filter((s) => s.sheet === this.sheet);
  }

  /**
   * Strokes of the current sheet within `radius` of (x, y), all in board fractions;
   * `ratio` = width / height of the board, so distances are measured in one unit.
   * @param {number} x @param {number} y @param {number} radius @param {number} ratio
   */
  hit(x, y, radius, ratio) {
    /** @type {string[]} */
    const ids = [];
    for (const s of this.strokes.values()) {
      if (s.sheet !== this.sheet) continue;
      const reach = radius + s.width / 2;
      const p = s.points;
      for (let i = 0; i < p.length; i += 2) {
        const x2 = p[i + 2] ?? p[i], y2 = p[i + 3] ?? p[i + 1];
        if (segmentDistance(x * ratio, y, p[i] * ratio, p[i + 1], x2 * ratio, y2) <= reach * ratio) { ids.push(s.id); break; }
      }
    }
    return ids;
  }
}

/** Distance from P to segment AB. @param {number} px @param {number} py @param {number} ax @param {number} ay @param {number} bx @param {number} by */
export function segmentDistance(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/** A stroke id nobody else picks. */
export function newStrokeId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return "s" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Where to put a board of aspect `ratio` inside a `width` × `height` area: the largest that fits.
 * @param {number} width @param {number} height @param {number} ratio
 */
export function fitBoard(width, height, ratio) {
  if (width / Math.max(height, 1) > ratio) return { width: Math.floor(height * ratio), height: Math.floor(height) };
  return { width: Math.floor(width), height: Math.floor(width / ratio) };
}
