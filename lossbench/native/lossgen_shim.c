/* lossbench shim over Opus 1.5's LossGen (dnn/lossgen.c and its weights).
 *
 * Upstream's sample_loss() draws from the C library's global rand(); this
 * shim instead takes the uniform draws from the caller, so a sequence is a
 * pure function of (model, loss rate, draws): reproducible for a seed and
 * safe in threads. Compiled by scripts/build-opus.sh against the unpacked
 * Debian source; nothing here reaches into libopus.
 */
#include "lossgen.c"

#define LB_EXPORT __attribute__((visibility("default")))

LB_EXPORT int lb_lossgen_state_size(void) { return (int)sizeof(LossGenState); }

LB_EXPORT int lb_lossgen_init(LossGenState *st) {
  lossgen_init(st);
  return 0;
}

/* One step of the model, as sample_loss_impl() but with the draw given. */
static int lb_step(LossGenState *st, float loss_fraction, float u) {
  float input[2];
  float tmp[LOSSGEN_DENSE_IN_OUT_SIZE];
  float out;
  int loss;
  LossGen *model = &st->model;
  input[0] = (float)st->last_loss;
  input[1] = loss_fraction;
  compute_generic_dense_lossgen(&model->lossgen_dense_in, tmp, input, ACTIVATION_TANH, 0);
  compute_generic_gru_lossgen(&model->lossgen_gru1_input, &model->lossgen_gru1_recurrent, st->gru1_state, tmp, 0);
  compute_generic_gru_lossgen(&model->lossgen_gru2_input, &model->lossgen_gru2_recurrent, st->gru2_state, st->gru1_state, 0);
  compute_generic_dense_lossgen(&model->lossgen_dense_out, &out, st->gru2_state, ACTIVATION_SIGMOID, 0);
  loss = u < out;
  st->last_loss = loss;
  return loss;
}

/* Draw n losses. ``uniform`` holds n draws in [0, 1) (n + 100 when the state
 * is fresh: like upstream, the first 100 steps warm the GRUs up and are
 * dropped). Returns the number of draws consumed. */
LB_EXPORT int lb_lossgen_sample(LossGenState *st, float loss_fraction, int n, const float *uniform,
                                unsigned char *lost) {
  int i, k = 0;
  if (!st->used) {
    for (i = 0; i < 100; i++) lb_step(st, loss_fraction, uniform[k++]);
    st->used = 1;
  }
  for (i = 0; i < n; i++) lost[i] = (unsigned char)lb_step(st, loss_fraction, uniform[k++]);
  return k;
}
