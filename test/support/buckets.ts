import request from 'supertest';

/** The level of one user's bucket, read through the admin API. */
export async function userTokens(url: string, id: string): Promise<number> {
  const res = await request(url).get(`/buckets/user/${id}`).expect(200);
  return (res.body as { bucket: { tokens: number } }).bucket.tokens;
}

/**
 * A stream settles when its response closes, a moment after the client has read the last
 * byte: waits (up to a second) for the bucket to move off the level it had while reserved.
 */
export async function settledUserTokens(
  url: string,
  id: string,
  reservedLevel: number,
): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const tokens = await userTokens(url, id);
    if (tokens !== reservedLevel) return tokens;
    await new Promise((r) => setTimeout(r, 10));
  }
  return userTokens(url, id);
}
