import { useEffect, useRef, useState } from "react";
import { moveItem, toggleItem } from "../lib/shape";
import type { Column } from "../lib/types";

// Which property columns a table shows, and in which order: the chosen ones first (moved with
// the arrows), then the others; kept in the URL by the caller.
export function ColumnChooser(props: {
  all: Column[];
  chosen: string[];
  onChange: (chosen: string[]) => void;
  onReset: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [filter, setFilter] = useState("");
  const anchor = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (event: MouseEvent) => {
      if (!anchor.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") setOpen(false);
    };
    document.addEventListener("mousedown", onDown);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onDown);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);
  const others = props.all.filter((c) => !props.chosen.includes(c.key));
  const shown = (key: string) => !filter || key.toLowerCase().includes(filter.toLowerCase());
  const byKey = new Map(props.all.map((c) => [c.key, c]));
  return (
    <div className="pop-anchor" ref={anchor}>
      <button className="btn" type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
        Columns <span className="badge">{props.chosen.length}</span>
      </button>
      {open && (
        <div className="popover" role="dialog" aria-label="Choose columns" data-testid="columns">
          <label className="search" style={{ minWidth: 0, marginBottom: 6 }}>
            <input
              autoFocus
              placeholder="Find a property…"
              aria-label="Find a property"
              value={filter}
              onChange={(event) => setFilter(event.target.value)}
            />
          </label>
          {props.chosen.filter(shown).map((key) => {
            const index = props.chosen.indexOf(key);
            return (
              <div className="col-item" key={key}>
                <label>
                  <input type="checkbox" checked onChange={() => props.onChange(toggleItem(props.chosen, key))} />
                  <span title={key}>{key}</span>
                  {byKey.get(key)?.numeric && <span className="badge">123</span>}
                </label>
                <button
                  className="btn small ghost"
                  type="button"
                  aria-label={`Move ${key} left`}
                  disabled={index === 0}
                  onClick={() => props.onChange(moveItem(props.chosen, index, -1))}
                >
                  ↑
                </button>
                <button
                  className="btn small ghost"
                  type="button"
                  aria-label={`Move ${key} right`}
                  disabled={index === props.chosen.length - 1}
                  onClick={() => props.onChange(moveItem(props.chosen, index, 1))}
                >
                  ↓
                </button>
              </div>
            );
          })}
          {others.filter((c) => shown(c.key)).map((column) => (
            <div className="col-item" key={column.key}>
              <label>
                <input type="checkbox" checked={false} onChange={() => props.onChange([...props.chosen, column.key])} />
                <span title={column.key}>{column.key}</span>
                {column.numeric && <span className="badge">123</span>}
              </label>
            </div>
          ))}
          <div style={{ display: "flex", justifyContent: "flex-end", paddingTop: 6 }}>
            <button className="btn small" type="button" onClick={props.onReset}>
              Reset to default
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
