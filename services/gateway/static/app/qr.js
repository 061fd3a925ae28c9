// The spend code as a QR code: uqr (vendored) encodes, this draws the modules as one SVG path
// built with DOM calls, so nothing goes through innerHTML and the page's CSP needs no exception.

import { encode } from "./vendor/uqr/index.mjs";

const SVG = "http://www.w3.org/2000/svg";

/** An <svg> of `text` as a QR code, error correction M, with the standard 4-module quiet zone. */
export function qrSvg(text) {
  const { data, size } = encode(text, { ecc: "M", border: 4 });
  let d = "";
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (data[y][x]) d += `M${x} ${y}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("aria-hidden", "true");
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#ffffff");
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", d);
  modules.setAttribute("fill", "#000000");
  svg.append(background, modules);
  return svg;
}
