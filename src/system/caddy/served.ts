import type { Runner } from "../runner.js";

/** Where to ask for a name's certificate: Caddy's HTTPS listener as seen from its own site. */
export interface HandshakeTarget {
  readonly host: string;
  readonly port: number;
  readonly servername: string;
}

/** The certificate a TLS handshake was answered with, or why there was none. */
export type Served =
  | {
      readonly issuer: string;
      readonly notBefore: string;
      readonly notAfter: string;
      readonly serial: string;
      /** The certificate's own names (DNS SANs): a fallback certificate covers another name. */
      readonly names: readonly string[];
    }
  | { readonly error: string };

const AT_ONCE = 64;

// stdin: "host port servername" lines; stdout: a JSON array, one entry per line, in order.
// Verification is off on purpose: this asks what Caddy serves, not whether this machine trusts it.
export const HANDSHAKE_SCRIPT = `const tls=require("tls");let i="";process.stdin.on("data",d=>i+=d).on("end",async()=>{const t=i.split("\\n").filter(Boolean).map(l=>l.split(" "));const out=new Array(t.length);let next=0;const iso=s=>new Date(s).toISOString();const one=()=>new Promise(done=>{const k=next++;if(k>=t.length)return done(false);const[host,port,servername]=t[k];let over=false;const end=v=>{if(over)return;over=true;out[k]=v;s.destroy();done(true)};const s=tls.connect({host,port:Number(port),servername,rejectUnauthorized:false,ALPNProtocols:["http/1.1"]});s.setTimeout(3000,()=>end({error:"no answer within 3 s"}));s.on("secureConnect",()=>{const c=s.getPeerCertificate();if(!c||!c.valid_to)return end({error:"no certificate"});const n=c.issuer||{};end({issuer:[n.O,n.CN].filter(Boolean).join(", ")||"(no issuer name)",notBefore:iso(c.valid_from),notAfter:iso(c.valid_to),serial:c.serialNumber,names:(c.subjectaltname||"").split(", ").filter(n=>n.startsWith("DNS:")).map(n=>n.slice(4).toLowerCase())})}).on("error",e=>end({error:e.code==="ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR"?"no certificate for the name (TLS alert: internal error)":e.code||e.message}))});const worker=async()=>{while(await one());};await Promise.all(Array.from({length:${AT_ONCE}},worker));process.stdout.write(JSON.stringify(out))})`;

/**
 * The certificate Caddy serves for each name, by one TLS handshake per name from inside the
 * site's namespace, all from one node process. Caddy 2.6's admin API says nothing about
 * certificates; the handshake reads what clients actually get.
 */
export async function readServed(
  runner: Runner,
  targets: readonly HandshakeTarget[],
): Promise<Served[]> {
  if (targets.length === 0) return [];
  const r = await runner.run(process.execPath, ["-e", HANDSHAKE_SCRIPT], {
    input: targets.map((t) => `${t.host} ${t.port} ${t.servername}\n`).join(""),
    step: "status certificates",
  });
  let answers: unknown;
  try {
    answers = JSON.parse(r.stdout);
  } catch {
    answers = undefined;
  }
  if (!Array.isArray(answers) || answers.length !== targets.length)
    return targets.map(() => ({ error: "the handshake probe gave no answer" }));
  return answers as Served[];
}
