/** etcd's v3election.Election service: a thin adapter over the election recipe (src/concurrency/election.ts). */
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../../base/logger.js';
import { requestContext } from '../../base/request-context.js';
import {
  ElectionService,
  type CampaignRequest, type CampaignResponse, type ElectionServer, type LeaderRequest, type LeaderResponse,
  type ProclaimRequest, type ProclaimResponse, type ResignRequest, type ResignResponse,
} from '../../gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import { callSignal, recipeUnary } from './call-signal.js';
import { callContext } from './unary.js';
import type { ServiceRegistration } from './services.js';

export interface ElectionApi {
  /** Waits until elected; stops (and withdraws) when `signal` aborts. */
  campaign(request: CampaignRequest, signal: AbortSignal): Promise<CampaignResponse>;
  proclaim(request: ProclaimRequest): Promise<ProclaimResponse>;
  leader(request: LeaderRequest): Promise<LeaderResponse>;
  /** The leader now and every change after, until `signal` aborts or the consumer stops pulling. */
  observe(request: LeaderRequest, signal: AbortSignal): AsyncIterable<LeaderResponse>;
  resign(request: ResignRequest): Promise<ResignResponse>;
}

export function electionService(api: ElectionApi, log: Logger): ServiceRegistration {
  return {
    definition: ElectionService,
    implementation: {
      campaign: recipeUnary('Campaign', log, (r: CampaignRequest, signal) => api.campaign(r, signal)),
      proclaim: recipeUnary('Proclaim', log, (r: ProclaimRequest) => api.proclaim(r)),
      leader: recipeUnary('Leader', log, (r: LeaderRequest) => api.leader(r)),
      observe: (call: ServerWritableStream<LeaderRequest, LeaderResponse>) => void serveObserve(api, log, call),
      resign: recipeUnary('Resign', log, (r: ResignRequest) => api.resign(r)),
    } satisfies Partial<Record<keyof ElectionServer, unknown>>,
  };
}

/**
 * Streams observations, one at a time: the next is pulled only once the transport took the last, so a
 * client that stops reading holds back the recipe (whose watcher then parks) instead of filling memory.
 * Like etcd, a failure of the observation (not a cancel) ends the stream without an error status.
 */
async function serveObserve(api: ElectionApi, log: Logger, call: ServerWritableStream<LeaderRequest, LeaderResponse>): Promise<void> {
  const { signal, release } = callSignal(call);
  try {
    await requestContext.run(callContext(call), async () => {
      for await (const res of api.observe(call.request, signal)) {
        if (!call.write(res)) await drained(call, signal);
      }
    });
    call.end();
  } catch (err) {
    if (signal.aborted) return;
    log.warn('election observe ended', { error: String(err) });
    call.end();
  } finally {
    release();
  }
}

function drained(call: ServerWritableStream<LeaderRequest, LeaderResponse>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      call.removeListener('drain', done);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(signal.reason);
      else resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
