/** BullMQ queues of the farm, opened on one Redis connection, for the coordinator's commands. */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './config.ts';
import { CPU_QUEUE, chipQueueName } from './jobs.ts';
import { knownChips } from './registry.ts';

export class FarmQueues {
  private readonly open = new Map<string, Queue>();
  constructor(readonly redis: Redis) {}

  get(name: string): Queue {
    let q = this.open.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis, prefix: KEY_PREFIX });
      q.on('error', () => {});
      this.open.set(name, q);
    }
    return q;
  }

  chip(chipId: string): Queue {
    return this.get(chipQueueName(chipId));
  }

  /** Every queue that may hold jobs: one per chip ever announced, and the CPU queue. */
  async all(): Promise<Queue[]> {
    const chips = await knownChips(this.redis);
    return [...chips.map((c) => this.chip(c.chipId)), this.get(CPU_QUEUE)];
  }

  async close(): Promise<void> {
    await Promise.all([...this.open.values()].map((q) => q.close().catch(() => {})));
    this.open.clear();
  }
}
