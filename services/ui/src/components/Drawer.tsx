import { useEffect, useRef } from "react";

// A side panel over the page: Escape or the scrim closes it, focus moves into it when it opens
// and back where it was when it closes.
export function Drawer(props: {
  title: React.ReactNode;
  subtitle?: React.ReactNode;
  actions?: React.ReactNode;
  wide?: boolean;
  onClose: () => void;
  children: React.ReactNode;
  testId?: string;
}) {
  const panel = useRef<HTMLDivElement>(null);
  const { onClose } = props;
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    panel.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        onClose();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      before?.focus?.();
    };
  }, [onClose]);
  return (
    <>
      <div className="scrim" onClick={onClose} />
      <aside
        className={`drawer${props.wide ? " wide" : ""}`}
        role="dialog"
        aria-modal="true"
        tabIndex={-1}
        ref={panel}
        data-testid={props.testId ?? "drawer"}
      >
        <div className="drawer-head">
          <div style={{ flex: 1, minWidth: 0 }}>
            <h2>{props.title}</h2>
            {props.subtitle && <div className="sub">{props.subtitle}</div>}
          </div>
          {props.actions}
          <button className="btn ghost" type="button" aria-label="Close" onClick={onClose}>
            ✕
          </button>
        </div>
        <div className="drawer-body">{props.children}</div>
      </aside>
    </>
  );
}
