/** Random weights [fanIn, neurons] (row-major) summing to 1 per neuron, and biases of both signs: a layer the ideal mapping takes exactly. */
export function unitSumLayer(rnd: () => number, fanIn: number, neurons: number): { w: Float32Array; b: Float32Array } {
  const w = Float32Array.from({ length: fanIn * neurons }, () => rnd() - 0.3);
  for (let i = 0; i < neurons; i++) {
    let s = 0;
    for (let j = 0; j < fanIn; j++) s += w[j * neurons + i]!;
    for (let j = 0; j < fanIn; j++) w[j * neurons + i]! += (1 - s) / fanIn;
  }
  const b = Float32Array.from({ length: neurons }, () => 0.3 * (rnd() - 0.5));
  return { w, b };
}
