/**
 * What a bring-up leaves in its run folder: `bringup.json` (the record, without the per-synapse
 * arrays, which only the plots need) and `report.html` (tables of checks and findings, per-layer
 * histograms and heat maps of single-synapse spike times, the jitter histogram).
 */

import { writeJsonAtomicSync } from '../../models/io/atomic-file.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { heatMap, histogram } from '../report/svg-plot.ts';
import type { BringupRecord } from './bringup-record.ts';

/** The record as JSON: per-synapse arrays replaced by their summary statistics. */
export function recordForJson(rec: BringupRecord): Record<string, unknown> {
  return {
    ...rec,
    layers: rec.layers.map((d) => ({
      layer: d.layer,
      inputs: d.inputs,
      outputs: d.outputs,
      measuredNmos: d.measuredNmos,
      measuredPmos: d.measuredPmos,
      unmeasured: d.unmeasured,
      offsetTicks: d.offsetTicks,
      nmosMedianTicks: finiteMedian(d.nmosTicks),
      pmosMedianDelayTicks: finiteMedian(d.pmosDelayTicks),
      flags: d.flags,
      mismatchTails: d.mismatchTails,
      notes: d.notes,
    })),
    jitter: rec.jitter && { ...rec.jitter, deviations: undefined },
  };
}

export function writeBringupJson(path: string, rec: BringupRecord): void {
  writeJsonAtomicSync(path, recordForJson(rec));
}

export async function writeBringupReport(path: string, rec: BringupRecord): Promise<void> {
  const sections: ReportSection[] = [];
  sections.push({
    title: 'Checks',
    blocks: [
      {
        kind: 'table',
        rows: rec.checks.map((c) => ({ step: c.title, status: c.status.toUpperCase(), detail: c.detail, seconds: Number(c.seconds.toFixed(2)) })),
      },
      ...(rec.stoppedEarly ? [{ kind: 'text' as const, text: `Stopped early at "${rec.stoppedEarly.step}": ${rec.stoppedEarly.reason}` }] : []),
    ],
  });
  const faults = [
    ...rec.neurons.map((n) => ({
      fault: `${n.kind}-neuron:${n.layer}.${n.neuron}`,
      evidence: n.kind === 'dead' ? 'silent under full drive' : 'fires with no input',
    })),
    ...rec.synapses.map((s) => ({ fault: `${s.kind}-synapse:${s.layer}.${s.input}.${s.neuron}.${s.polarity}`, evidence: s.evidence })),
  ];
  sections.push({
    title: 'Findings',
    blocks: [
      faults.length
        ? { kind: 'table', rows: faults, caption: 'In the faults= grammar of the behavioural chip (layer.input.neuron.polarity).' }
        : { kind: 'text', text: 'No faulty neuron or synapse found.' },
    ],
  });
  if (rec.memory.length) {
    sections.push({
      title: 'Weight memory',
      blocks: [{ kind: 'table', rows: rec.memory.map((m) => ({ pattern: m.pattern, layer: m.layer, ok: m.ok, detail: m.detail })) }],
    });
  }
  for (const d of rec.layers) {
    const marks = d.flags.map((f) => ({ row: f.input, col: f.neuron }));
    const nmos = Array.from(d.nmosTicks).filter(Number.isFinite);
    const pmos = Array.from(d.pmosDelayTicks).filter((v) => Number.isFinite(v));
    const blocks: ReportSection['blocks'] = [
      {
        kind: 'kv',
        pairs: {
          'synapses measured (NMOS / PMOS)': `${d.measuredNmos} / ${d.measuredPmos}`,
          'not measurable': d.unmeasured,
          'median single-synapse time (NMOS, ticks)': finiteMedian(d.nmosTicks),
          'median PMOS delay (ticks)': finiteMedian(d.pmosDelayTicks),
          'comparator + timer offset (ticks)': d.offsetTicks,
          flagged: d.flags.length,
          'PMOS low at p1 / p2 but a threshold-mismatch tail by shape': d.mismatchTails.length,
        },
      },
      {
        kind: 'plot',
        caption: `Single NMOS synapse alone at the first probe code: ticks from the input spike to the neuron's spike (${nmos.length} synapses).`,
        svg: histogram({ title: `layer ${d.layer}: single-synapse spike times`, xLabel: 'ticks', series: [{ name: 'NMOS alone', values: d.nmosTicks }] }),
      },
      {
        kind: 'plot',
        caption: `Delay a PMOS synapse adds to its NMOS partner (${pmos.length} synapses).`,
        svg: histogram({ title: `layer ${d.layer}: PMOS delays`, xLabel: 'ticks', series: [{ name: 'PMOS delay', values: d.pmosDelayTicks }] }),
      },
      {
        kind: 'plot',
        caption: 'Single NMOS synapse times per input (rows) and neuron (columns), log colour scale; flagged synapses circled.',
        svg: heatMap({
          title: `layer ${d.layer}: synapse times`,
          xLabel: 'neuron',
          yLabel: 'input',
          values: d.nmosTicks,
          rows: d.inputs,
          cols: d.outputs,
          log: true,
          marks,
          colorLabel: 'ticks',
        }),
      },
    ];
    if (d.mismatchTails.length) {
      blocks.push({
        kind: 'table',
        caption:
          'Not faults: PMOS synapses as far below the layer at p1 / p2 as a weak one, whose deficit shrinks at the stronger code p3 as a threshold shift does (bringup-shape.ts).',
        rows: d.mismatchTails.map((t) => ({
          synapse: `${t.layer}.${t.input}.${t.neuron}.${t.polarity}`,
          'z at p2': Number(t.z.toFixed(2)),
          'unexplained current factor': t.unexplainedFactor,
          'threshold shift (mV)': t.shiftMv,
          'PDK sigmas': t.pdkSigmas,
        })),
      });
    }
    if (d.notes.length)
      blocks.push({ kind: 'text', text: d.notes.slice(0, 20).join('; ') + (d.notes.length > 20 ? ` (and ${d.notes.length - 20} more)` : '') });
    sections.push({ title: `Layer ${d.layer} (${d.inputs} inputs x ${d.outputs} neurons)`, blocks });
  }
  if (rec.jitter) {
    sections.push({
      title: 'Repeatability',
      blocks: [
        {
          kind: 'plot',
          caption: `Each neuron's tick minus its mean over ${rec.jitter.repeats} identical runs (${rec.jitter.neurons} neurons); rms ${rec.jitter.rmsTicks.toFixed(3)} ticks.`,
          svg: histogram({ title: 'timer jitter', xLabel: 'ticks from the neuron mean', series: [{ name: 'deviation', values: rec.jitter.deviations }] }),
        },
      ],
    });
  }
  const supply: Record<string, unknown> = {};
  if (rec.status?.before) supply['at start'] = `${rec.status.before.supplyV.toFixed(3)} V, ${rec.status.before.temperatureC.toFixed(1)} C`;
  if (rec.status?.after) supply['at end'] = `${rec.status.after.supplyV.toFixed(3)} V, ${rec.status.after.temperatureC.toFixed(1)} C`;
  for (const t of rec.selfTest ?? []) supply[`self-test ${t.name}`] = `${t.ok ? 'ok' : 'FAILED'}: ${t.detail}`;
  for (const a of rec.alerts) supply[`alert ${a.kind}`] = `${a.value}: ${a.text}`;
  if (Object.keys(supply).length) sections.push({ title: 'Supply and temperature', blocks: [{ kind: 'kv', pairs: supply }] });
  if (rec.codes) {
    sections.push({
      title: 'Probe codes',
      blocks: [
        {
          kind: 'kv',
          caption: 'DAC codes found on the chip (bisection on layer 0); all inside the announced safe windows.',
          pairs: {
            'full NMOS drive': rec.codes.full,
            'NMOS n0 / n1 / n2': `${rec.codes.n0} / ${rec.codes.n1} / ${rec.codes.n2}`,
            'PMOS p1 / p2': `${rec.codes.p1} / ${rec.codes.p2}`,
          },
        },
      ],
    });
  }
  await writeHtmlReport(path, {
    title: 'spikeloop bring-up',
    subtitle: `${rec.device.chipId ?? 'no chip'} on ${rec.device.uri}`,
    summary: {
      result: rec.ok ? 'PASS' : 'FAIL',
      chip: rec.device.chipId ?? '-',
      layers: rec.device.geometry?.join('-') ?? '-',
      'dead / stuck neurons': rec.dead_neurons.length,
      'bad synapses': rec.bad_synapses.length,
      'jitter (rms ticks)': rec.jitter_ticks ?? '-',
      seconds: Number(rec.seconds.toFixed(1)),
    },
    sections,
  });
}

function finiteMedian(v: ArrayLike<number>): number | null {
  const s = Array.from(v)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : null;
}
