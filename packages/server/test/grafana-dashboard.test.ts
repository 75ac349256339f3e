/**
 * The Grafana dashboard shipped in deploy/grafana/rune.json refers only to metrics (and labels)
 * that the server really exports: every PromQL expression is checked against the metric
 * registry of `createServerMetrics()`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createServerMetrics } from '../src/metrics.js';

const DASHBOARD = new URL('../../../deploy/grafana/rune.json', import.meta.url);

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

describe('deploy/grafana/rune.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const metrics = new Map<string, { type: string; labels: Set<string> }>();
  for (const metric of createServerMetrics().registry.getMetricsAsArray()) {
    const labels = new Set((metric as unknown as { labelNames: string[] }).labelNames);
    metrics.set(metric.name, { type: String(metric.type), labels });
  }

  /** The exported series a name stands for: histograms also have _bucket, _sum and _count. */
  const resolve = (name: string): { base: string; labels: Set<string> } | undefined => {
    const direct = metrics.get(name);
    if (direct !== undefined) return { base: name, labels: direct.labels };
    const match = /^(.*)_(bucket|sum|count)$/.exec(name);
    const base = match?.[1] === undefined ? undefined : metrics.get(match[1]);
    if (base === undefined || base.type !== 'histogram') return undefined;
    return {
      base: match?.[1] ?? name,
      labels: new Set([...base.labels, ...(match?.[2] === 'bucket' ? ['le'] : [])]),
    };
  };

  const expressions = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ title: panel.title, expr: target.expr })),
  );

  it('has panels with PromQL targets', () => {
    expect(expressions.length).toBeGreaterThanOrEqual(10);
  });

  it.each(expressions)('$title: refers only to existing metrics and labels', ({ expr }) => {
    const names = [...expr.matchAll(/\brune_[a-z0-9_]+\b/g)].map((match) => match[0]);
    expect(names.length).toBeGreaterThan(0);
    const labels = new Set<string>();
    for (const name of names) {
      const resolved = resolve(name);
      expect(resolved, `${name} is not a metric of the server`).toBeDefined();
      for (const label of resolved?.labels ?? []) labels.add(label);
    }
    const used = [
      ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((match) =>
        (match[1] ?? '').split(',').map((label) => label.trim()),
      ),
      ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((match) =>
        (match[1] ?? '').split(',').map((pair) => pair.split(/[!=~]/)[0]?.trim() ?? ''),
      ),
    ].filter((label) => label !== '');
    for (const label of used) expect(labels, `label ${label} in ${expr}`).toContain(label);
  });
});
