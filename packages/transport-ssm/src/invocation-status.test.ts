import { describe, expect, it } from 'vitest';
import { INVOCATION_STATUS_TABLE, mapInvocationStatus } from './invocation-status.js';

describe('mapInvocationStatus', () => {
  it.each([
    ['Pending', 'Pending', { kind: 'running', started: false }],
    ['Delayed', 'Delayed', { kind: 'running', started: false }],
    ['InProgress', 'InProgress', { kind: 'running', started: true }],
    ['Cancelling', 'Cancelling', { kind: 'running', started: true }],
    ['Success', 'Success', { kind: 'finished' }],
    ['Failed', 'Failed', { kind: 'finished' }],
    ['Cancelled', 'Cancelled', { kind: 'cancelled' }],
    ['Failed', 'Terminated', { kind: 'cancelled' }],
    ['TimedOut', 'ExecutionTimedOut', { kind: 'timeout' }],
    ['TimedOut', 'Execution Timed Out', { kind: 'timeout' }],
    ['Failed', 'ExecutionTimedOut', { kind: 'timeout' }],
  ])('%s / %s', (status, details, expected) => {
    expect(mapInvocationStatus(status, details)).toEqual(expected);
  });

  it.each([
    ['TimedOut', 'DeliveryTimedOut', 'DELIVERY_TIMEOUT'],
    ['TimedOut', 'Delivery Timed Out', 'DELIVERY_TIMEOUT'],
    ['Failed', 'DeliveryTimedOut', 'DELIVERY_TIMEOUT'],
    ['Failed', 'Undeliverable', 'UNDELIVERABLE'],
    ['Failed', 'InvalidPlatform', 'UNSUPPORTED_FEATURE'],
    ['Failed', 'AccessDenied', 'AUTH_FAILED'],
    ['Exploded', 'Whatever', 'TRANSPORT_API_ERROR'],
    [undefined, undefined, 'TRANSPORT_API_ERROR'],
  ])('%s / %s is the error %s', (status, details, code) => {
    expect(mapInvocationStatus(status, details)).toMatchObject({ kind: 'error', code });
  });

  it('documents every row it knows', () => {
    expect(INVOCATION_STATUS_TABLE.length).toBe(13);
    for (const row of INVOCATION_STATUS_TABLE) {
      expect(row.outcome).toEqual(mapInvocationStatus(row.status, row.statusDetails));
    }
  });
});
