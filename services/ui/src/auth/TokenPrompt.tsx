import { useEffect, useRef, useState } from "react";
import { provideToken, subscribe, type TokenRequest } from "./token";
import "./auth.css";

// The dialog that asks for a token when the server answered 401 (auth is on). The requests
// that were refused wait for it and are sent again with the token.
export function TokenPrompt() {
  const [request, setRequest] = useState<TokenRequest>(null);
  const [value, setValue] = useState("");
  const [remember, setRemember] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => subscribe(setRequest), []);
  useEffect(() => {
    if (request) input.current?.focus();
  }, [request]);
  if (!request) return null;
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (!value.trim()) return;
    provideToken(value, remember);
    setValue("");
  };
  return (
    <>
      <div className="scrim auth-scrim" />
      <form
        className="auth-prompt"
        role="dialog"
        aria-modal="true"
        aria-labelledby="auth-title"
        data-testid="token-prompt"
        onSubmit={submit}
      >
        <h2 id="auth-title">This server needs a token</h2>
        {request.reason === "refused" ? (
          <p className="auth-refused" role="alert">
            That token was refused: {request.detail}
          </p>
        ) : (
          <p className="sub">
            Ask its administrator for one (<code>cmf-server token create --scope read</code>).
          </p>
        )}
        <label className="auth-field">
          Token
          <input
            ref={input}
            type="password"
            name="token"
            autoComplete="off"
            spellCheck={false}
            placeholder="cmf_…"
            value={value}
            onChange={(event) => setValue(event.target.value)}
          />
        </label>
        <label className="auth-remember">
          <input type="checkbox" checked={remember} onChange={(event) => setRemember(event.target.checked)} />
          Remember it in this browser
        </label>
        <button className="btn primary" type="submit" disabled={!value.trim()}>
          Continue
        </button>
      </form>
    </>
  );
}
