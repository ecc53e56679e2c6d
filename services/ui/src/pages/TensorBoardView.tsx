import { useQuery } from "@tanstack/react-query";
import { Empty, ErrorState, Loading } from "../components/States";
import { api } from "../lib/api";
import { formatBytes } from "../lib/shape";

export function TensorBoardView({ pipeline }: { pipeline: string }) {
  const answer = useQuery({ queryKey: ["tensorboard", pipeline], queryFn: ({ signal }) => api.tensorboard(pipeline, signal) });
  if (answer.isPending) return <Loading />;
  if (answer.isError) return <ErrorState error={answer.error} onRetry={() => void answer.refetch()} />;
  const data = answer.data;
  return (
    <div data-testid="tensorboard">
      {data.configured && data.url ? (
        <>
          <div className="toolbar">
            <a className="btn primary" href={data.url} target="_blank" rel="noreferrer">
              Open in TensorBoard
            </a>
          </div>
          {/* The server's own TensorBoard (a path on this origin) is shown in the page; one
              elsewhere may refuse to be framed, so it is only linked. */}
          {data.url.startsWith("/") && (
            <iframe
              className="tensorboard-frame"
              data-testid="tensorboard-frame"
              title={`TensorBoard of ${pipeline}`}
              src={data.url}
              style={{ width: "100%", height: "75vh", border: 0 }}
            />
          )}
        </>
      ) : (
        <div className="state" style={{ paddingBottom: 24 }}>
          <div className="icon">📈</div>
          <h2>TensorBoard is not configured</h2>
          <p>
            This server does not run TensorBoard yet. The logs below were uploaded with
            <code> cmf metadata push -p {pipeline} -t &lt;log dir&gt;</code>; once a TensorBoard serves them, set{" "}
            <code>TENSORBOARD_URL</code> and this page links there.
          </p>
        </div>
      )}
      {data.files.length === 0 ? (
        <Empty title="No TensorBoard logs uploaded for this pipeline">
          <p>
            Push them with <code>cmf metadata push -p {pipeline} -t &lt;log dir&gt;</code>.
          </p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="plain">
            <thead>
              <tr>
                <th>File</th>
                <th>Size</th>
              </tr>
            </thead>
            <tbody>
              {data.files.map((file) => (
                <tr key={file.path}>
                  <td className="mono">{file.path}</td>
                  <td>{formatBytes(file.size)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
