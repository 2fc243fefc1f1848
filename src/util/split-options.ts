/** Splits "a,b=1,c=x,,y" into ["a", "b=1", "c=x,y"]: QEMU's option syntax, where a doubled comma is a literal comma. */
export function splitOptions(value: string): string[] {
  const items: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c !== ',') { cur += c; continue; }
    if (value[i + 1] === ',') { cur += ','; i++; continue; }
    items.push(cur);
    cur = '';
  }
  items.push(cur);
  return items;
}
