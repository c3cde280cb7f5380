// The one place that talks to the citypilot API. Every request carries the user's key as a
// bearer token (never in the URL, so it stays out of server logs and history), and every
// error becomes an ApiError carrying the problem+json `detail`, which the API writes for a
// person to act on ("this key is revoked: ask an admin for a new one").

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// params: an object; an array value becomes a repeated parameter (?kpi=a&kpi=b).
function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null) search.append(name, String(v));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function problem(response) {
  try {
    const body = await response.json();
    if (body && body.detail) return String(body.detail);
  } catch {
    // not JSON (a proxy's error page): fall through to the status line
  }
  return `${response.status} ${response.statusText || "error"}`;
}

export function client(key) {
  async function send(path, params) {
    let response;
    try {
      response = await fetch(path + query(params), {
        headers: { Authorization: `Bearer ${key}` },
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "the citypilot server cannot be reached: is it running?");
    }
    if (!response.ok) throw new ApiError(response.status, await problem(response));
    return response;
  }

  return {
    async json(path, params) {
      return (await send(path, params)).json();
    },
    // A file the API sends as an attachment. A plain link cannot carry the Authorization
    // header, so the file is fetched, then handed to the browser as an object URL.
    async download(path, params) {
      const response = await send(path, params);
      const disposition = response.headers.get("Content-Disposition") || "";
      const match = /filename="([^"]+)"/.exec(disposition);
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = match ? match[1] : "citypilot-export";
      document.body.append(link);
      link.click();
      link.remove();
      // Revoke later: revoking at once can cancel the download in some browsers.
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      return link.download;
    },
  };
}
