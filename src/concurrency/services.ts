/** The Lock and Election gRPC services over this member's recipes: what bootstrap registers. */
import type { Logger } from '../base/logger.js';
import { electionService } from '../api/grpc/election-service.js';
import { lockService } from '../api/grpc/lock-service.js';
import type { ServiceRegistration } from '../api/grpc/services.js';
import { ElectionRecipes } from './election.js';
import { LockRecipes } from './mutex.js';
import type { ConcurrencyDeps } from './session.js';

export function concurrencyServices(deps: ConcurrencyDeps, log: Logger): ServiceRegistration[] {
  return [lockService(new LockRecipes(deps), log), electionService(new ElectionRecipes(deps), log)];
}
