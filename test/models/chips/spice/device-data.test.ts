import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gridValue } from '../../../../models/chips/spice/characterise-netlists.ts';
import { cardSha256, GENERATOR_VERSION, REVERSAL_AT } from '../../../../models/chips/spice/characterise-devices.ts';
import {
  DEVICE_DATA_PATH,
  loadDeviceData,
  parseDeviceData,
  reversalFrom,
  tableCurrent,
  tableReversal,
  type DeviceTable,
} from '../../../../models/chips/spice/device-data.ts';
import { devicePointsNetlist, mismatchSlopeLines } from '../../../../models/chips/spice/device-netlists.ts';
import { createEngine, getVector, type SpiceEngine } from '../../../../models/chips/spice/engine.ts';
import { CORNERS } from '../../../../models/chips/spice/sky130-corners.ts';
import { sky130ModelCard } from '../../../../models/chips/spice/sky130-models.ts';
import { sky130Curves, sky130NominalCurves } from '../../../../models/chips/sky130-nominal.ts';

const data = loadDeviceData();

describe('committed sky130 device data', () => {
  it('was generated from the bundled card by this generator version, and stays small', () => {
    expect(data.card.sha256).toBe(cardSha256());
    expect(data.generator.version).toBe(GENERATOR_VERSION);
    expect(statSync(DEVICE_DATA_PATH).size).toBeLessThan(400_000);
    const have = new Set(data.sweeps.map((s) => `${s.corner}@${s.temperatureC}`));
    for (const c of ['card', ...CORNERS]) for (const t of [-40, 27, 85]) expect(have.has(`${c}@${t}`)).toBe(true);
  });

  it('stores E+ and E- that follow from its own currents', () => {
    const swing = data.circuit.vRest - data.circuit.vThreshold;
    for (const t of [data.nominal, data.sweeps[7]]) {
      expect(tableReversal(t, t.nmos, REVERSAL_AT, data.circuit.vRest, swing).map((e) => (e === null ? null : Number(e.toPrecision(6))))).toEqual(t.ePlus);
      expect(tableReversal(t, t.pmos, REVERSAL_AT, data.circuit.vRest, swing).map((e) => (e === null ? null : Number(e.toPrecision(6))))).toEqual(t.eMinus);
    }
  });

  it('has the physics a MOSFET must show: monotone in the gate, corners and temperature in order', () => {
    for (const t of data.sweeps) {
      const n = t.vd.count;
      for (let ig = 1; ig < t.vg.count; ig++) {
        // NMOS sinks more as its gate rises; PMOS sources less.
        expect(Math.abs(t.nmos[ig * n + 5])).toBeGreaterThanOrEqual(Math.abs(t.nmos[(ig - 1) * n + 5]));
        expect(Math.abs(t.pmos[ig * n + 5])).toBeLessThanOrEqual(Math.abs(t.pmos[(ig - 1) * n + 5]) * (1 + 1e-3));
      }
    }
    const at = (c: string, temp: number, pmos: boolean, vg: number) =>
      Math.abs(tableCurrent(data.sweeps.find((s) => s.corner === c && s.temperatureC === temp)!, pmos, vg, 1.1));
    expect(at('ff', 27, false, 0.5)).toBeGreaterThan(at('tt', 27, false, 0.5));
    expect(at('tt', 27, false, 0.5)).toBeGreaterThan(at('ss', 27, false, 0.5));
    expect(at('ff', 27, true, 1.2)).toBeGreaterThan(at('tt', 27, true, 1.2));
    expect(at('tt', 27, true, 1.2)).toBeGreaterThan(at('ss', 27, true, 1.2));
    // fs = fast NMOS, slow PMOS; sf the reverse.
    expect(at('fs', 27, false, 0.5)).toBeLessThan(at('sf', 27, false, 0.5));
    expect(at('fs', 27, true, 1.2)).toBeGreaterThan(at('sf', 27, true, 1.2));
    // Weak inversion: hotter conducts more (UT and the threshold's temperature coefficient).
    for (const c of ['card', 'tt']) {
      expect(at(c, 85, false, 0.4)).toBeGreaterThan(at(c, 27, false, 0.4));
      expect(at(c, 27, false, 0.4)).toBeGreaterThan(at(c, -40, false, 0.4));
    }
  });

  it('has weak-inversion mismatch near Pelgrom from the card slopes (vth0 and voff add for NMOS)', () => {
    const wl = data.device.w * data.device.l * 1e12; // um^2
    const s = data.mismatch.slopes;
    const sigmaN = Math.hypot(s['sky130_fd_pr__nfet_01v8__vth0_slope'], s['sky130_fd_pr__nfet_01v8__voff_slope']) / Math.sqrt(wl);
    const k = data.mismatch.nmos.vg.indexOf(0.35);
    expect(k).toBeGreaterThanOrEqual(0);
    // 200 copies: the sample sigma is within ~10 % of the truth; toxe adds a little on top.
    expect(data.mismatch.nmos.sdVgEquivalent[k]!).toBeGreaterThan(0.9 * sigmaN);
    expect(data.mismatch.nmos.sdVgEquivalent[k]!).toBeLessThan(1.25 * sigmaN);
  });
});

describe('re-simulated sample of the data', () => {
  let engine: SpiceEngine;
  beforeAll(async () => {
    engine = await createEngine('wasm');
  });
  afterAll(async () => {
    await engine.close();
  });

  // A few knots of three tables (nominal, a hot corner, a cold corner), both devices.
  const tables: [string, () => DeviceTable][] = [
    ['nominal', () => data.nominal],
    ['ff 85 C', () => data.sweeps.find((s) => s.corner === 'ff' && s.temperatureC === 85)!],
    ['ss -40 C', () => data.sweeps.find((s) => s.corner === 'ss' && s.temperatureC === -40)!],
  ];
  for (const [name, get] of tables) {
    it(`matches a fresh SPICE run within 2e-5 (${name})`, async () => {
      const t = get();
      for (const pmos of [false, true]) {
        const knots = pmos
          ? [
              [24, 3],
              [28, 5],
              [32, 8],
            ]
          : [
              [8, 3],
              [10, 5],
              [13, 8],
            ];
        const scale = t.vg.step === 0.05 ? 1 : 5; // the nominal table has 10 mV knots
        const idx = knots.map(([g, v]) => [g * scale, v] as const);
        const pts = idx.map(([g, v]) => ({ vg: gridValue(t.vg, g), v: gridValue(t.vd, v) }));
        const netlist = devicePointsNetlist(pmos, t.corner, t.temperatureC, data.circuit.supply, pts);
        const res = await engine.run(netlist);
        idx.forEach(([g, v], k) => {
          const spice = getVector(res, `i(vm${k})`, netlist)[0];
          const stored = (pmos ? t.pmos : t.nmos)[g * t.vd.count + v];
          expect(Math.abs(stored - spice) / Math.abs(spice), `${name} ${pmos ? 'PMOS' : 'NMOS'} Vg ${pts[k].vg} v ${pts[k].v}`).toBeLessThan(2e-5);
        });
      }
    }, 60_000);
  }
});

describe('reading the tables', () => {
  it('interpolates an exponential exactly in the gate and linearly in the membrane', () => {
    const vg = { start: 0, step: 0.1, count: 5 };
    const vd = { start: 1.0, step: 0.2, count: 2 };
    const f = (g: number, v: number) => -1e-9 * Math.exp(g / 0.04) * (1 + 0.7 * v);
    const nmos: number[] = [];
    for (let a = 0; a < vg.count; a++) for (let b = 0; b < vd.count; b++) nmos.push(f(gridValue(vg, a), gridValue(vd, b)));
    const t = { corner: 'card', temperatureC: 27, vg, vd, nmos, pmos: nmos.map((x) => -x), ePlus: [], eMinus: [] } as DeviceTable;
    expect(tableCurrent(t, false, 0.237, 1.1)).toBeCloseTo(f(0.237, 1.1), 18);
    expect(tableCurrent(t, true, 0.237, 1.1)).toBeCloseTo(-f(0.237, 1.1), 18);
    expect(() => tableCurrent(t, false, 0.5, 1.1)).toThrow(/gate voltage 0.5 V is outside/);
    expect(() => tableCurrent(t, false, 0.2, 1.3)).toThrow(/membrane voltage 1.3 V is outside/);
  });

  it('recovers the reversal potential of a linear drain characteristic', () => {
    // I into the node = g (E - v), E = -2.5 V (NMOS-like): E_u = (1.3 + 2.5) / 0.4 = 9.5.
    const g = 4e-9;
    const i = (v: number) => g * (-2.5 - v);
    expect(reversalFrom(i(1.0), i(1.1), i(1.2), 1.1, 0.1, 1.3, 0.4)).toBeCloseTo(9.5, 10);
    // PMOS-like: E = 1.8 + 1 = 2.8 V -> E_u = (1.3 - 2.8) / 0.4 = -3.75.
    const j = (v: number) => g * (2.8 - v);
    expect(reversalFrom(j(1.0), j(1.1), j(1.2), 1.1, 0.1, 1.3, 0.4)).toBeCloseTo(-3.75, 10);
    expect(reversalFrom(-1e-13, -1e-13, -1e-13, 1.1, 0.1, 1.3, 0.4)).toBeNull();
  });

  it('gives the nominal curves off the committed file, and names what is missing', () => {
    const c = sky130NominalCurves();
    const t = data.nominal;
    const k = 40 * t.vd.count + 5; // Vg 0.40 V, v 1.1 V
    expect(c.current('nmos', 0.4, 1.1)).toBeCloseTo(t.nmos[k], 20);
    expect(c.reversal('nmos', 0.4)).toBe(t.ePlus[40]);
    expect(c.current('pmos', 1.3, 1.1)).toBeGreaterThan(0);
    expect(() => sky130Curves('tt', 50)).toThrow(/no characterised curves for corner tt at 50 C/);
  });
});

describe('data file validation and netlists', () => {
  it('rejects a damaged file naming the field', () => {
    const text = readFileSync(DEVICE_DATA_PATH, 'utf8');
    const bad = JSON.parse(text);
    bad.sweeps[2].temperatureC = 'hot';
    expect(() => parseDeviceData(JSON.stringify(bad), 'x.json')).toThrow(/x.json: field sweeps.2.temperatureC/);
    const short = JSON.parse(text);
    short.nominal.pmos.pop();
    expect(() => parseDeviceData(JSON.stringify(short), 'y.json')).toThrow(/y.json: table card\/27 C pmos has/);
    expect(() => parseDeviceData('{', 'z.json')).toThrow(/z.json: not JSON/);
  });

  it('restates the card mismatch slopes for sizes in metres', () => {
    const lines = mismatchSlopeLines(sky130ModelCard());
    expect(lines).toContain('.param sky130_fd_pr__nfet_01v8__vth0_slope=3.356e-9');
    expect(lines.some((l) => l.startsWith('.param sky130_fd_pr__pfet_01v8__vth0_slope1='))).toBe(true);
    expect(() => mismatchSlopeLines('* no card')).toThrow(/no \*_slope/);
  });
});
