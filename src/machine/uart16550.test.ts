import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Uart16550 } from './uart16550.js';

const RBR = 0, THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function setup() {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const uart = new Uart16550({ onOutput: (b) => out.push(b), setIrq: (l) => irqs.push(l) });
  const r = (reg: number) => uart.read(reg, 1);
  const w = (reg: number, v: number) => uart.write(reg, 1, v);
  return { uart, out, irqs, r, w, irq: () => irqs.at(-1) ?? false };
}

test('OpenSBI uart8250 init, putc and getc', () => {
  const { uart, out, r, w, irq } = setup();
  w(IER, 0);
  w(LCR, 0x80);
  w(THR, 2); // DLL
  w(IER, 0); // DLM
  assert.equal(r(RBR), 2, 'DLL reads back under DLAB');
  w(LCR, 0x03);
  w(FCR, 0x01);
  w(MCR, 0);
  r(LSR);
  r(RBR);
  w(SCR, 0);
  for (const ch of 'OK\n') {
    while (!(r(LSR) & 0x20));
    w(THR, ch.charCodeAt(0));
  }
  assert.equal(Buffer.from(out).toString(), 'OK\n');
  assert.equal(r(LSR) & 0x01, 0, 'no data');
  uart.pushInput([0x61]);
  assert.equal(r(LSR) & 0x61, 0x61, 'DR, THRE, TEMT');
  assert.equal(r(RBR), 0x61);
  assert.equal(irq(), false, 'no interrupts with IER = 0');
});

test('Linux 8250 autoconfig probes: IER bits, loopback MSR, FIFO IIR bits', () => {
  const { r, w } = setup();
  w(IER, 0);
  assert.equal(r(IER) & 0x0f, 0);
  w(IER, 0x0f);
  assert.equal(r(IER) & 0x0f, 0x0f);
  w(IER, 0xff);
  assert.equal(r(IER), 0x0f, 'upper IER bits (UUE) do not stick, so it is not taken for an XScale');
  w(IER, 0);
  w(MCR, 0x10 | 0x0a);
  assert.equal(r(MSR) & 0xf0, 0x90, 'loopback: RTS→CTS, OUT2→DCD');
  w(MCR, 0);
  w(FCR, 0x01);
  assert.equal(r(IIR) >> 6, 3, '16550A: FIFO enabled bits');
  assert.equal(r(LSR) === 0xff, false);
});

test('Linux THRE test: enabling ETBEI with THR empty raises THRI; reading IIR clears it', () => {
  const { r, w, irq } = setup();
  w(IER, 0x02);
  assert.equal(irq(), true);
  assert.equal(r(IIR) & 0x0f, 0x02);
  assert.equal(irq(), false);
  assert.equal(r(IIR) & 0x0f, 0x01, 'no interrupt after the read');
  w(IER, 0);
  w(IER, 0x02);
  assert.equal(r(IIR) & 0x0f, 0x02, 're-enabling re-raises');
  w(THR, 0x41);
  assert.equal(irq(), true, 'THR empties again after each byte');
  w(IER, 0);
  assert.equal(irq(), false);
});

test('receive interrupts: trigger level, character timeout, priority over THRE', () => {
  const { uart, r, w, irq } = setup();
  w(FCR, 0x81); // FIFO on, trigger at 8 (what Linux sets for a 16550A)
  w(IER, 0x03);
  assert.equal(r(IIR) & 0x0f, 0x02, 'THRE first');
  uart.pushInput(new TextEncoder().encode('abc'));
  assert.equal(irq(), true);
  assert.equal(r(IIR), 0xcc, 'below the trigger level: character timeout');
  uart.pushInput(new TextEncoder().encode('defghij'));
  assert.equal(r(IIR) & 0x0f, 0x04, 'at or above the trigger level: data available');
  let s = '';
  while (r(LSR) & 1) s += String.fromCharCode(r(RBR));
  assert.equal(s, 'abcdefghij');
  assert.equal(irq(), false);
  w(THR, 0x20);
  assert.equal(r(IIR) & 0x0f, 0x02);
});

test('FCR clears the receive FIFO; the FIFO grows past 16 bytes', () => {
  const { uart, r, w } = setup();
  w(FCR, 0x01);
  assert.equal(uart.pushInput(new Uint8Array(1000).fill(0x31)), 1000);
  assert.equal(uart.rxPending, 1000);
  w(FCR, 0x03);
  assert.equal(uart.rxPending, 0);
  assert.equal(r(LSR) & 1, 0);
});

test('loopback sends THR to the receiver, not the host', () => {
  const { out, r, w } = setup();
  w(MCR, 0x10);
  w(THR, 0x5a);
  assert.equal(out.length, 0);
  assert.equal(r(RBR), 0x5a);
});

test('break and line-status interrupt; LSR read clears error bits', () => {
  const { uart, r, w } = setup();
  w(IER, 0x05);
  uart.sendBreak();
  assert.equal(r(IIR) & 0x0f, 0x06, 'RLS outranks RX data');
  assert.equal(r(LSR) & 0x11, 0x11);
  assert.equal(r(IIR) & 0x0f, 0x04, 'FIFO off: one byte is data available');
  assert.equal(r(RBR), 0);
  assert.equal(r(LSR) & 0x10, 0);
});

test('scratch register and modem status', () => {
  const { r, w } = setup();
  w(SCR, 0xa5);
  assert.equal(r(SCR), 0xa5);
  assert.equal(r(MSR), 0xb0, 'CTS, DSR, DCD asserted');
});

test('save → restore → save is stable, including queued input', () => {
  const a = setup();
  a.w(LCR, 0x03);
  a.w(FCR, 0x41);
  a.w(IER, 0x01);
  a.w(SCR, 9);
  a.uart.pushInput([1, 2, 3]);
  const saved = a.uart.save();
  const b = setup();
  b.uart.restore(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual(b.uart.save(), saved);
  assert.equal(b.irq(), true, 'restore re-signals the line');
  assert.equal(b.r(RBR), 1);
});
