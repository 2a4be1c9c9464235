/**
 * Building the page without a framework: `h()` makes elements from plain values, so text from the
 * network only ever becomes text nodes (never HTML), and a few formatting helpers.
 */

export type Child = Node | string | number | null | undefined | false | readonly Child[];
export type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
    return;
  }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

function setAttrs(el: Element, attrs: Attrs | null | undefined): void {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "class") el.setAttribute("class", String(value));
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

const pad = (n: number): string => String(n).padStart(2, "0");

/** `2026-11-25 14:30:05` in UTC: the server's log and the iTIP summaries speak UTC too. */
export function utc(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(
    d.getUTCMinutes(),
  )}:${pad(d.getUTCSeconds())}`;
}

/** "3 min ago", "in 2 h". */
export function relative(ms: number | null | undefined, nowMs = Date.now()): string {
  if (ms === null || ms === undefined) return "";
  const diff = ms - nowMs;
  const abs = Math.abs(diff);
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

/** A time cell: UTC, with the relative time beside it. */
export function time(ms: number | null | undefined): HTMLElement {
  if (ms === null || ms === undefined) return h("span", { class: "muted" }, "-");
  return h(
    "time",
    { datetime: new Date(ms).toISOString(), title: new Date(ms).toISOString() },
    utc(ms),
    " ",
    h("span", { class: "muted" }, `(${relative(ms)})`),
  );
}

/** A state word as a coloured badge (`look`: another state's colour, e.g. a missing optional record). */
export function badge(state: string, extra?: string | number, look?: string): HTMLElement {
  return h(
    "span",
    { class: `badge ${look ?? `state-${state.replace(/[^a-z-]/g, "")}`}` },
    state,
    extra === undefined ? null : ` ${extra}`,
  );
}

/** A button that copies `text`, saying so for a moment. */
export function copyButton(text: string, label = "copy"): HTMLButtonElement {
  const b = h("button", { type: "button", class: "copy", title: "Copy to the clipboard" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "copied";
    } catch {
      b.textContent = "select and copy";
    }
    setTimeout(() => {
      b.textContent = label;
    }, 1500);
  });
  return b;
}

/**
 * A domain name, URL or e-mail address that may wrap after its dots, slashes and the like (a `<wbr>`
 * after each), so that on a narrow screen `_ischedules._tcp.example.org.` breaks between labels and
 * never inside one ("example.or/g").
 */
export function breakable(text: string): Child[] {
  return text.split(/(?<=[./?&=@:_])/).flatMap((part, i) => (i === 0 ? [part] : [h("wbr"), part]));
}

/** A name or URL in code type, wrapping only where breakable() allows. */
export function nameCode(text: string, attrs: Attrs = {}): HTMLElement {
  const cls = ["name", attrs.class].filter(Boolean).join(" ");
  return h("code", { ...attrs, class: cls }, breakable(text));
}

/**
 * A table in a box that scrolls sideways on its own when the table is wider than the screen, so
 * the page itself never does. `cards` tables become one card per row on a phone instead (each cell
 * labelled by its column's heading, from `data-label`).
 */
export function tableBox(table: HTMLTableElement): HTMLElement {
  if (table.classList.contains("cards")) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent ?? "");
    for (const tr of table.querySelectorAll("tbody tr")) labelCells(tr as HTMLTableRowElement, heads);
    return table;
  }
  return h("div", { class: "table-box" }, table);
}

/** Labels a row's cells with their column headings (for the card layout of `cards` tables). */
export function labelCells(tr: HTMLTableRowElement, heads: readonly string[]): HTMLTableRowElement {
  for (const [i, td] of [...tr.cells].entries()) if (heads[i]) td.setAttribute("data-label", heads[i]);
  return tr;
}

export function errorBox(message: string): HTMLElement {
  return h("p", { class: "error", role: "alert" }, message);
}
