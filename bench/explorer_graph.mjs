// A lineage-shaped graph of about `size` nodes for the explorer benchmarks (bench/explorer.py):
// runs of a pipeline side by side, each a chain of executions where an execution reads the
// run's Environment and one or two artifacts written before it and writes one or two. Returned
// in the shape of GET /api/native/v1/lineage/graph/{p} (the combined level), deterministic.
export function lineageGraph(size, { pipeline = "bench-explorer", runLength = 200 } = {}) {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const nodes = [];
  const edges = [];
  let id = 1;
  const stages = ["Prepare", "Featurize", "Train", "Evaluate"];
  const types = ["Dataset", "Dataset", "Model", "Metrics"];
  while (nodes.length < size) {
    const env = { id: `artifact:${id}`, kind: "artifact", name: `python_env_${id}.txt`, display_name: `python_env:${id}`, type: "Environment", uri: `env${id}`, pipelines: [pipeline] };
    id += 1;
    nodes.push(env);
    const written = [];
    const data = { id: `artifact:${id}`, kind: "artifact", name: `data_${id}.xml`, display_name: `data.xml:${id}`, type: "Dataset", uri: `d${id}`, pipelines: [pipeline] };
    id += 1;
    nodes.push(data);
    written.push(data.id);
    for (let i = 0; i < runLength && nodes.length < size; i += 1) {
      const s = i % stages.length;
      const x = { id: `execution:${id}`, kind: "execution", name: `${stages[s]}_${id}`, display_name: `${stages[s]}_${id.toString(16)}`, type: `${pipeline}/${stages[s]}`, stage: `${pipeline}/${stages[s]}`, uuid: `u${id}`, pipelines: [pipeline] };
      id += 1;
      nodes.push(x);
      edges.push({ source: env.id, target: x.id, kind: "INPUT" });
      const reads = 1 + Math.floor(random() * 2);
      for (let r = 0; r < reads; r += 1) {
        const back = Math.min(written.length, 1 + Math.floor(random() * 4));
        const from = written[written.length - back];
        edges.push({ source: from, target: x.id, kind: "INPUT" });
      }
      const writes = 1 + Math.floor(random() * 2);
      for (let w = 0; w < writes && nodes.length < size; w += 1) {
        const a = { id: `artifact:${id}`, kind: "artifact", name: `out_${id}.bin`, display_name: `out_${id}:${(id * 7919).toString(16).slice(0, 4)}`, type: types[s], uri: `o${id}`, pipelines: [pipeline] };
        id += 1;
        nodes.push(a);
        edges.push({ source: x.id, target: a.id, kind: "OUTPUT" });
        written.push(a.id);
      }
    }
  }
  const unique = new Map(edges.map((e) => [`${e.source}>${e.target}`, e]));
  const kept = [...unique.values()];
  return {
    version: 1,
    pipeline,
    level: "combined",
    nodes,
    edges: kept,
    total_nodes: nodes.length,
    total_edges: kept.length,
    hidden_nodes: 0,
    hidden_edges: 0,
    partial: false,
    reason: null,
    stages: stages.map((s) => ({ name: `${pipeline}/${s}`, count: 0 })),
    artifact_types: [...new Set(types)].map((t) => ({ type: t, count: 0 })),
  };
}
