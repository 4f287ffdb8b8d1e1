/**
 * The step rules of the Stage-I fit (see `FitOptimizer` in src/ops/fit.ts): 'sgd' and 'adam'
 * (`plainFit`) and 'normalized' (`normalizedFit`, a relative step per set with per-set
 * backtracking). They drive a fit engine (src/ops/fitEngines.ts) and never read data back.
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FitEngine, FitPlan } from './fitEngines.js';
import { pairScalar, type PairConsts } from './pairKernel.js';

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/**
 * Per-set values [B] shaped to broadcast against tensors of rank `rank` with the sets on `axis`;
 * each (value, rank) is reshaped once (a Reshape is a kernel dispatch, and a step applies the
 * same factor to every parameter tensor).
 */
function bySetShaper(axis: number): (v: tf.Tensor, rank: number) => tf.Tensor {
  const done = new Map<tf.Tensor, Map<number, tf.Tensor>>();
  return (v, rank) => {
    let byRank = done.get(v);
    if (!byRank) done.set(v, (byRank = new Map()));
    let out = byRank.get(rank);
    if (!out) {
      out = tf.reshape(
        v,
        Array.from({ length: rank }, (_, i) => (i === axis ? -1 : 1)),
      );
      byRank.set(rank, out);
    }
    return out;
  };
}

/** 'sgd' and 'adam': one loss-and-gradient evaluation per step, no loss needed unless traced. */
export function plainFit(engine: FitEngine, consts: PairConsts, plan: FitPlan, wantTrace: boolean) {
  const losses: tf.Tensor[] = [];
  let params = engine.init();
  let m: tf.Tensor[] = [];
  let v: tf.Tensor[] = [];
  try {
    if (plan.optimizer === 'adam') {
      m = params.map((p) => tf.zerosLike(p));
      v = params.map((p) => tf.zerosLike(p));
    }
    for (let step = 1; step <= plan.steps; step++) {
      const next = tf.tidy(() => {
        const { loss, grads } = engine.lossAndGrads(params, true, wantTrace);
        if (plan.optimizer === 'sgd') {
          return { loss, params: params.map((p, i) => tf.sub(p, tf.mul(grads![i], pairScalar(consts, plan.lr)))), m: [], v: [] };
        }
        const c1 = 1 - ADAM_BETA1 ** step;
        const c2 = 1 - ADAM_BETA2 ** step;
        const m2 = m.map((mi, i) => tf.add(tf.mul(mi, ADAM_BETA1), tf.mul(grads![i], 1 - ADAM_BETA1)));
        const v2 = v.map((vi, i) => tf.add(tf.mul(vi, ADAM_BETA2), tf.mul(tf.square(grads![i]), 1 - ADAM_BETA2)));
        const p2 = params.map((p, i) => tf.sub(p, tf.div(tf.mul(m2[i], plan.lr / c1), tf.add(tf.sqrt(tf.div(v2[i], c2)), ADAM_EPSILON))));
        return { loss, params: p2, m: m2, v: v2 };
      });
      tf.dispose([...params, ...m, ...v]);
      params = next.params;
      m = next.m;
      v = next.v;
      if (next.loss) losses.push(next.loss);
    }
    if (wantTrace) losses.push(engine.lossAndGrads(params, false).loss!);
    const fitted = engine.finish(params);
    const trace = wantTrace ? tf.stack(losses) : null;
    return { params: fitted, trace };
  } finally {
    tf.dispose([...params, ...m, ...v, ...losses]);
  }
}

/** A squared gradient norm below this counts as zero (the set does not move). */
const TINY_SQ_NORM = 1e-30;

/**
 * 'normalized': per set, the candidate W - eta ||F|| G / ||K G^T|| (see `EngineOutput.norms`)
 * is evaluated (loss and, except after the last step, gradient); where its loss is not above
 * the current one it is taken (its gradient is the next step's), elsewhere the set keeps W and
 * its gradient and halves its eta. So every set's loss is non-increasing, by construction. The
 * accept/reject choice is per-set arithmetic with a 0/1 factor (exact, no data-dependent
 * branch, nothing read back to the CPU). Cost: one loss-and-gradient evaluation per step plus
 * a final loss-only one, and a few elementwise passes.
 */
export function normalizedFit(engine: FitEngine, consts: PairConsts, plan: FitPlan, wantTrace: boolean) {
  const { B } = plan;
  const axis = engine.setAxis;
  const uses = engine.evalUses;
  const losses: tf.Tensor[] = [];
  let params = engine.init();
  // per set: loss, step direction, s = sqrt(ref / dir) (the step per unit eta), eta
  type State = { loss: tf.Tensor1D; grads: tf.Tensor[]; s: tf.Tensor1D; eta: tf.Tensor1D };
  let state: State | null = null;
  const disposeState = () => {
    if (state) tf.dispose([state.loss, ...state.grads, state.s, state.eta]);
  };
  // a set without gradient (dir 0) gets a finite s and a zero step
  const stepScale = (n: { ref: tf.Tensor1D; dir?: tf.Tensor1D }) =>
    tf.sqrt(tf.div(n.ref, tf.maximum(n.dir!, pairScalar(consts, TINY_SQ_NORM)))) as tf.Tensor1D;
  try {
    if (plan.steps > 0) {
      state = tf.tidy(() => {
        const { loss, grads, norms } = engine.lossAndGrads(params, true, true, true);
        return { loss: loss!, grads: grads!, s: stepScale(norms!), eta: tf.fill([B], plan.lr) as tf.Tensor1D };
      });
      if (wantTrace) losses.push(state.loss.clone());
    }
    for (let step = 1; step <= plan.steps; step++) {
      const last = step === plan.steps;
      const cur: State = state!;
      const next = tf.tidy(() => {
        // the step moves what `ref` measures by eta times its norm (to first order)
        const alpha = tf.mul(cur.eta, cur.s);
        const bySet = bySetShaper(axis);
        const move = (a: tf.Tensor, i: number) => tf.sub(params[i], tf.mul(cur.grads[i], bySet(a, params[i].rank)));
        // only the params the evaluation reads (the others are placeholders it ignores)
        const candidate = params.map((p, i) => (uses && !uses[i] ? p : move(alpha, i)));
        const out = engine.lossAndGrads(candidate, !last, true, !last);
        const accept = tf.lessEqual(out.loss!, cur.loss) as tf.Tensor1D;
        const a = tf.cast(accept, 'float32');
        // the candidate where accepted, else the old params: a zero step (exact: the same
        // arithmetic as the candidate where a = 1; alpha is finite, so no NaN either)
        const aAlpha = tf.mul(alpha, a);
        const newParams = params.map((_, i) => move(aAlpha, i));
        const newLoss = select(accept, out.loss!, cur.loss) as tf.Tensor1D;
        if (last) return { params: newParams, loss: newLoss };
        const notA = tf.sub(pairScalar(consts, 1), a);
        // x a + y (1 - a): exactly x or y for a in {0, 1}
        const pick = (x: tf.Tensor, y: tf.Tensor) => tf.add(tf.mul(x, bySet(a, x.rank)), tf.mul(y, bySet(notA, y.rank)));
        return {
          params: newParams,
          loss: newLoss,
          grads: out.grads!.map((g, i) => pick(g, cur.grads[i])),
          s: select(accept, stepScale(out.norms!), cur.s) as tf.Tensor1D,
          eta: select(accept, cur.eta, tf.mul(cur.eta, pairScalar(consts, 0.5))) as tf.Tensor1D,
        };
      });
      tf.dispose(params);
      params = next.params;
      if (wantTrace) losses.push(next.loss.clone());
      disposeState();
      state = next.grads ? { loss: next.loss, grads: next.grads, s: next.s!, eta: next.eta! } : null;
      if (!state) next.loss.dispose();
    }
    if (wantTrace && plan.steps === 0) losses.push(engine.lossAndGrads(params, false).loss!);
    const fitted = engine.finish(params);
    const trace = wantTrace ? tf.stack(losses) : null;
    return { params: fitted, trace };
  } finally {
    disposeState();
    tf.dispose([...params, ...losses]);
  }
}

/**
 * tf.where for a condition of the same shape as a and b, by the Select kernel itself: tf.where
 * first broadcasts all three (three copies), which costs more than the select on [B] vectors.
 */
function select(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel('Select', { condition: cond, t: a, e: b }) as tf.Tensor;
}
