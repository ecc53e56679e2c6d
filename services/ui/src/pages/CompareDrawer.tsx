import { useQuery } from "@tanstack/react-query";
import { Drawer } from "../components/Drawer";
import { ErrorState, Loading } from "../components/States";
import { api } from "../lib/api";
import { useParams } from "../lib/router";
import { bars, formatValue, shortUuid } from "../lib/shape";
import type { ComparisonRow } from "../lib/types";

const color = (i: number) => `var(--c${i % 10})`;

function Chart({ row, names }: { row: ComparisonRow; names: string[] }) {
  const numbers = row.numbers ?? [];
  const sized = bars(numbers);
  return (
    <figure className="chart" data-testid="chart" aria-label={`${row.key} by execution`}>
      <h4>{row.key}</h4>
      {sized.map((bar, i) => (
        <div className="bar-row" key={names[i] ?? i} title={`${names[i]}: ${formatValue(row.values[i] ?? null)}`}>
          <div className="bar-track">
            {bar && (
              <div
                className="bar"
                style={{ width: `${Math.max(bar.size * 100, 1.5)}%`, background: color(i), opacity: bar.negative ? 0.55 : 1 }}
              />
            )}
          </div>
          <span>{numbers[i] === null || numbers[i] === undefined ? "—" : formatValue(numbers[i] ?? null)}</span>
        </div>
      ))}
    </figure>
  );
}

export function CompareDrawer({ ids, onClose }: { ids: number[]; onClose: () => void }) {
  const [params, setParams] = useParams();
  const differencesOnly = params.get("diff") === "1";
  const answer = useQuery({ queryKey: ["compare", ids.join(",")], queryFn: ({ signal }) => api.compare(ids, signal) });
  const data = answer.data;
  const names = data?.executions.map((e) => `#${e.id} ${shortUuid(e.uuid)}`) ?? [];
  const rows = (data?.rows ?? []).filter((r) => !differencesOnly || r.differs);
  const charted = rows.filter((r) => r.chart);
  return (
    <Drawer
      wide
      title={`Comparing ${ids.length} executions`}
      subtitle="Numeric properties that differ are charted side by side"
      onClose={onClose}
      testId="compare"
      actions={
        <label className="btn small" style={{ cursor: "pointer" }}>
          <input
            type="checkbox"
            checked={differencesOnly}
            onChange={(event) => setParams({ diff: event.target.checked ? 1 : null }, true)}
          />
          Differences only
        </label>
      }
    >
      {answer.isPending && <Loading />}
      {answer.isError && <ErrorState error={answer.error} />}
      {data && (
        <>
          <div className="legend">
            {names.map((name, i) => (
              <span key={name}>
                <span className="swatch" style={{ background: color(i) }} />
                {name}
              </span>
            ))}
          </div>
          {charted.length > 0 && (
            <div className="charts">
              {charted.map((row) => (
                <Chart key={row.key} row={row} names={names} />
              ))}
            </div>
          )}
          <div style={{ overflowX: "auto" }}>
            <table className="plain" data-testid="compare-table">
              <thead>
                <tr>
                  <th>Property</th>
                  {names.map((name, i) => (
                    <th key={name}>
                      <span className="swatch" style={{ background: color(i), marginRight: 6 }} />
                      {name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr key={row.key} className={row.differs ? "diff" : undefined} data-testid="compare-row">
                    <td className="k">{row.key}</td>
                    {row.values.map((value, i) => (
                      <td key={i} className="mono">
                        {formatValue(value)}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
            {rows.length === 0 && <p className="sub">These executions do not differ in any property.</p>}
          </div>
        </>
      )}
    </Drawer>
  );
}
