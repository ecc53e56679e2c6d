export default function PipelinePage({ pipeline, view }: { pipeline: string; view: string }) {
  return (
    <div>
      {pipeline} {view}
    </div>
  );
}
