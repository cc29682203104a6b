// The balance chart of a statement: an SVG step line drawn here, from the
// statement's own running balances (no library, no external request).
import { s } from './dom.js';

// balanceChart draws points [{t: ms, balance: "12.34"}] after an opening
// balance; minor() turns amounts into Numbers for drawing only.
export function balanceChart({ opening, points, currency, minor, title }) {
  const W = 720, H = 240, L = 84, R = 16, T = 16, B = 36;
  const vals = [minor(opening), ...points.map(p => minor(p.balance))];
  let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
  if (lo === hi) hi = lo + 1;
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? points[points.length - 1].t : 1;
  const span = t1 > t0 ? t1 - t0 : 1;
  const x = t => L + ((t - t0) / span) * (W - L - R);
  const y = v => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const scale = opening.includes('.') ? opening.split('.')[1].length : 0;
  const fmt = v => (v / 10 ** scale).toFixed(scale);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart', 'aria-labelledby': 'chart-title' },
    s('title', { id: 'chart-title' }, title));
  // Axes and the zero line.
  svg.append(s('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: 'currentColor', 'stroke-width': 1 }));
  svg.append(s('line', { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: 'currentColor', 'stroke-width': 1, 'stroke-dasharray': '4 3', opacity: 0.6 }));
  for (const v of [hi, lo]) {
    svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 12, fill: 'currentColor' }, fmt(v) + ' ' + currency));
  }
  if (points.length) {
    const d0 = new Date(t0).toISOString().replace('.000Z', 'Z');
    const d1 = new Date(t1).toISOString().replace('.000Z', 'Z');
    svg.append(s('text', { x: L, y: H - 12, 'font-size': 12, fill: 'currentColor' }, d0));
    svg.append(s('text', { x: W - R, y: H - 12, 'text-anchor': 'end', 'font-size': 12, fill: 'currentColor' }, d1));
    // A step line: the balance holds until the next posting.
    let path = `M ${x(t0)} ${y(vals[0])}`;
    points.forEach((p, i) => {
      path += ` H ${x(p.t)} V ${y(vals[i + 1])}`;
    });
    svg.append(s('path', { d: path, fill: 'none', stroke: '#1d6fd1', 'stroke-width': 2, class: 'chart-line' }));
    for (const [i, p] of points.entries()) {
      if (points.length <= 200) svg.append(s('circle', { cx: x(p.t), cy: y(vals[i + 1]), r: 2.5, fill: '#1d6fd1' }));
    }
  } else {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', fill: 'currentColor' }, 'no postings in the period'));
  }
  return svg;
}
