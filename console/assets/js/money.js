// Decimal strings ("12.34", "-0.07") as exact scaled integers (BigInt):
// sums in the page never go through floating point.

export function parse(str) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(str);
  if (!m) throw new Error('not an amount: ' + str);
  const frac = m[3] || '';
  const v = BigInt(m[2] + frac);
  return { v: m[1] ? -v : v, scale: frac.length };
}

export function add(a, b) {
  const x = parse(a), y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  return format(x.v * 10n ** BigInt(scale - x.scale) + y.v * 10n ** BigInt(scale - y.scale), scale);
}

export function sum(list, scale) {
  let acc = format(0n, scale);
  for (const a of list) acc = add(acc, a);
  return acc;
}

export function format(v, scale) {
  const neg = v < 0n;
  let digits = (neg ? -v : v).toString().padStart(scale + 1, '0');
  if (scale > 0) digits = digits.slice(0, -scale) + '.' + digits.slice(-scale);
  return (neg ? '-' : '') + digits;
}

export function scaleOf(str) {
  return parse(str).scale;
}

// minor returns the amount as a Number of minor units, for drawing only.
export function minor(str) {
  return Number(parse(str).v);
}

export function isZero(str) {
  return parse(str).v === 0n;
}
