/* lossbench shim over Opus 1.5's LPCNet feature analysis, FARGAN vocoder and
 * deep-PLC feature predictor. Python reaches these internal (hidden) symbols
 * of libopus only through the functions below, loaded with ctypes.
 * Compiled by scripts/build-opus.sh and linked with libopus's own objects.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <string.h>
#include <stdlib.h>
#include "lpcnet.h"
#include "lpcnet_private.h"
#include "fargan.h"
#include "cpu_support.h"

#define LB_EXPORT __attribute__((visibility("default")))

LB_EXPORT int lb_nb_features(void) { return NB_FEATURES; }
LB_EXPORT int lb_frame_size(void) { return LPCNET_FRAME_SIZE; }

/* ---- analysis: 160 samples (int16 scale floats) in, 20 features out, with state */
LB_EXPORT LPCNetEncState *lb_analysis_create(void) { return lpcnet_encoder_create(); }
LB_EXPORT void lb_analysis_destroy(LPCNetEncState *st) { lpcnet_encoder_destroy(st); }
LB_EXPORT int lb_analysis_frames(LPCNetEncState *st, const float *pcm, int nframes, float *features) {
  int arch = opus_select_arch();
  int i;
  float tmp[NB_TOTAL_FEATURES];
  for (i = 0; i < nframes; i++) {
    lpcnet_compute_single_frame_features_float(st, pcm + i * LPCNET_FRAME_SIZE, tmp, arch);
    memcpy(features + i * NB_FEATURES, tmp, NB_FEATURES * sizeof(float));
  }
  return nframes;
}

/* ---- synthesis: FARGAN, warmed up with fargan_cont as dnn/fargan_demo.c does */
LB_EXPORT FARGANState *lb_fargan_create(void) {
  FARGANState *st = (FARGANState *)calloc(1, sizeof(FARGANState));
  if (st) fargan_init(st);
  return st;
}
LB_EXPORT void lb_fargan_destroy(FARGANState *st) { free(st); }
/* pcm0: FARGAN_CONT_SAMPLES (320) past samples in [-1, 1]; features0: 5 frames of 20 */
LB_EXPORT void lb_fargan_cont(FARGANState *st, const float *pcm0, const float *features0) {
  fargan_cont(st, pcm0, features0);
}
LB_EXPORT int lb_fargan_frames(FARGANState *st, const float *features, int nframes, float *pcm) {
  int i;
  for (i = 0; i < nframes; i++) fargan_synthesize(st, pcm + i * LPCNET_FRAME_SIZE, features + i * NB_FEATURES);
  return nframes;
}

/* ---- the deep-PLC feature predictor (dnn/plc_data.c): per 10 ms frame, input
 * [36 Burg cepstral values, 20 features, flag] (flag 1 for a received frame,
 * all zeros for a lost one), output the predicted features of the next frame.
 * This is compute_plc_pred() of dnn/lpcnet_plc.c with its state of our own. */
#include "plc_data.h"
#include "nnet.h"
typedef struct {
  PLCModel model;
  PLCNetState net;
  int arch;
} LBPlc;

LB_EXPORT int lb_plc_input_size(void) { return 2 * NB_BANDS + NB_FEATURES + 1; }
LB_EXPORT LBPlc *lb_plc_create(void) {
  LBPlc *st = (LBPlc *)calloc(1, sizeof(LBPlc));
  if (!st) return NULL;
  st->arch = opus_select_arch();
  if (init_plcmodel(&st->model, plcmodel_arrays) != 0) { free(st); return NULL; }
  return st;
}
LB_EXPORT void lb_plc_destroy(LBPlc *st) { free(st); }
LB_EXPORT void lb_plc_reset(LBPlc *st) { memset(&st->net, 0, sizeof(st->net)); }
LB_EXPORT void lb_plc_step(LBPlc *st, const float *in, float *out) {
  float tmp[PLC_DENSE_IN_OUT_SIZE];
  compute_generic_dense(&st->model.plc_dense_in, tmp, in, ACTIVATION_TANH, st->arch);
  compute_generic_gru(&st->model.plc_gru1_input, &st->model.plc_gru1_recurrent, st->net.gru1_state, tmp, st->arch);
  compute_generic_gru(&st->model.plc_gru2_input, &st->model.plc_gru2_recurrent, st->net.gru2_state, st->net.gru1_state, st->arch);
  compute_generic_dense(&st->model.plc_dense_out, out, st->net.gru2_state, ACTIVATION_LINEAR, st->arch);
}
/* 36 Burg cepstral values of 160 samples (int16 scale), as the PLC analysis does */
LB_EXPORT void lb_burg_cepstrum(const float *pcm, float *out) { burg_cepstral_analysis(out, pcm); }
