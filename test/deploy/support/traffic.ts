/** An identity that must never show up in /metrics (label values are bounded sets). */
export const TRAFFIC_USER = 'deploy-check-user-7f3a';
export const TRAFFIC_TEAM = 'deploy-check-team-91c2';

const headers = {
  'content-type': 'application/json',
  'x-user-id': TRAFFIC_USER,
  'x-team-id': TRAFFIC_TEAM,
};

async function post(url: string, body: unknown): Promise<number> {
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  await response.arrayBuffer(); // the whole body, streams included: settlement happens at the end
  return response.status;
}

/**
 * A little of everything through the gateway at `base`: JSON and streamed chat completions,
 * legacy completions, embeddings, a request too large for any budget (429), a model list and
 * the probes. Returns the status of each call, for a sanity check.
 */
export async function sendTraffic(base: string): Promise<Record<string, number>> {
  const messages = [{ role: 'user', content: 'Say hello to the deployment checks.' }];
  const statuses: Record<string, number> = {};
  statuses.chat = await post(`${base}/v1/chat/completions`, {
    model: 'gpt-4o-mini',
    messages,
    max_tokens: 16,
  });
  statuses.chatStream = await post(`${base}/v1/chat/completions`, {
    model: 'gpt-4o',
    messages,
    max_tokens: 16,
    stream: true,
  });
  statuses.completions = await post(`${base}/v1/completions`, {
    model: 'gpt-3.5-turbo-instruct',
    prompt: 'Once upon a time',
    max_tokens: 8,
  });
  statuses.embeddings = await post(`${base}/v1/embeddings`, {
    model: 'text-embedding-3-small',
    input: 'tokens',
  });
  statuses.tooLarge = await post(`${base}/v1/chat/completions`, {
    model: 'gpt-4o-mini',
    messages,
    max_tokens: 50_000,
  });
  statuses.models = (await fetch(`${base}/v1/models`, { headers })).status;
  statuses.live = (await fetch(`${base}/health/live`)).status;
  statuses.ready = (await fetch(`${base}/health/ready`)).status;
  return statuses;
}
