// The shapes of /api/native/v1 answers the pages read (docs/api.md, docs/ui.md).
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type Bag = Record<string, Json>;

export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
}

export interface PipelineCard {
  id: number;
  name: string;
  create_time_since_epoch: number;
  last_push_time_since_epoch: number;
  stage_count: number;
  execution_count: number;
  artifact_count: number;
}

export interface StageSummary {
  id: number;
  name: string;
  label: string;
  execution_count: number;
  artifact_count: number;
}

export interface PipelineOverview extends PipelineCard {
  stages: StageSummary[];
  artifact_types: { type: string; count: number }[];
}

export interface Column {
  key: string;
  bag: "properties" | "custom_properties";
  count: number;
  numeric: boolean;
}

export interface StageColumns {
  pipeline: string;
  stage: string;
  sampled: number;
  columns: Column[];
  default_columns: string[];
}

export interface Execution {
  id: number;
  uuid: string;
  name: string;
  pipeline: string;
  stage: string;
  type: string;
  properties: Bag;
  custom_properties: Bag;
  create_time_since_epoch: number;
  last_update_time_since_epoch: number;
  original_create_time_since_epoch: number | null;
}

export interface ArtifactRef {
  id: number;
  uri: string;
  name: string;
  type: string;
}

export interface ExecutionDetail extends Execution {
  events: { kind: string; type: number; artifact: ArtifactRef }[];
}

export interface Artifact {
  id: number;
  uri: string;
  name: string;
  type: string;
  pipelines: string[];
  properties: Bag;
  custom_properties: Bag;
  create_time_since_epoch: number;
  last_update_time_since_epoch: number;
  stored?: boolean;
}

export interface ExecutionRef {
  id: number;
  uuid: string;
  name: string;
  type: string;
  pipeline: string;
  stage: string;
}

export interface ArtifactDetail extends Artifact {
  events: { kind: string; type: number; execution: ExecutionRef }[];
  events_total: number;
}

export interface ComparisonRow {
  key: string;
  bag: string;
  values: Json[];
  differs: boolean;
  numeric: boolean;
  numbers: (number | null)[] | null;
  chart: boolean;
}

export interface Comparison {
  executions: Pick<Execution, "id" | "uuid" | "pipeline" | "stage" | "type" | "create_time_since_epoch">[];
  rows: ComparisonRow[];
}

export interface LabelPage {
  artifact_id: number;
  file_name: string;
  columns: string[];
  rows: string[][];
  total: number;
  offset: number;
}

export interface ModelCard {
  model: Artifact;
  executions: Execution[];
  inputs: ArtifactRef[];
  outputs: ArtifactRef[];
}

export interface TensorBoardAnswer {
  pipeline: string;
  configured: boolean;
  url: string | null;
  files: { path: string; size: number }[];
}
