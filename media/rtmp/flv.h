/* FLV tags (Adobe Flash Video File Format Specification 10.1, annex E)
 * and the RTMP audio/video message bodies, which are FLV tag bodies
 * (E.4.2 AUDIODATA, E.4.3 VIDEODATA): conversion to and from the hub's
 * frames (media/stream/frame.h).
 *
 * Codecs: H.264 (CodecID 7: AVCPacketType 0 = AVCDecoderConfigurationRecord,
 * 1 = length-prefixed NALUs with a signed 24-bit composition time),
 * H.265 as Enhanced RTMP v2 ("IsExHeader" bit, FourCC "hvc1": PacketType 0
 * SequenceStart with the HEVCDecoderConfigurationRecord, 1 CodedFrames with
 * composition time, 3 CodedFramesX without), AAC (SoundFormat 10:
 * AACPacketType 0 = AudioSpecificConfig, 1 = raw frame), G.711 A-law (7)
 * and mu-law (8) at 8 kHz mono.
 *
 * Times: FLV/RTMP times are milliseconds; frames get them in their
 * track's clock (90 kHz video, the sample rate for audio) on one timeline.
 * Pure, any thread; objects belong to their caller. */
#ifndef MS_MEDIA_RTMP_FLV_H
#define MS_MEDIA_RTMP_FLV_H

#include <stddef.h>
#include <stdint.h>

#include "media/stream/frame.h"
#include "util/buf.h"

#define MS_FLV_TAG_AUDIO  8
#define MS_FLV_TAG_VIDEO  9
#define MS_FLV_TAG_SCRIPT 18

/* Ingest side: one per publisher. */
typedef struct {
    ms_codec_params_t video, audio;
    int have_video, have_audio; /* a sequence header (or G.711) was seen */
    int nal_len;                /* NAL length size of the AVC/HEVC config (1, 2, 4) */
    int changed;                /* set when a sequence header changed video/audio */
} ms_flv_in_t;

void ms_flv_in_init(ms_flv_in_t *in);
/* A video message body at ts_ms. Returns 1 with a new frame in *out (the
 * caller owns it; track 0, MS_FRAME_KEY on an IDR/IRAP, parameter sets
 * in-band on keyframes, AUDs stripped), 0 (a sequence header: in->video
 * updated and in->changed set; or an end of sequence), -ENOTSUP (another
 * codec), -EINVAL (malformed), -ENOMEM. */
int ms_flv_in_video(ms_flv_in_t *in, int64_t ts_ms, const uint8_t *p, size_t n, ms_frame_t **out);
/* An audio message body: as above (track 0 too: the caller renumbers). */
int ms_flv_in_audio(ms_flv_in_t *in, int64_t ts_ms, const uint8_t *p, size_t n, ms_frame_t **out);

/* Output side. Bodies of RTMP messages / FLV tags appended to out. */
/* Video sequence header for p (H.264 or H.265); -ENOTSUP / -EINVAL. */
int ms_flv_out_video_seq(const ms_codec_params_t *p, ms_buf_t *out);
/* A video frame (payload as in frame.h); cts_ms = pts - dts in ms. */
int ms_flv_out_video(const ms_codec_params_t *p, const ms_frame_t *f, int32_t cts_ms,
                     ms_buf_t *out);
/* AAC AudioSpecificConfig header; -ENOTSUP for non-AAC (G.711 has none:
 * returns 0 and appends nothing). */
int ms_flv_out_audio_seq(const ms_codec_params_t *p, ms_buf_t *out);
int ms_flv_out_audio(const ms_codec_params_t *p, const ms_frame_t *f, ms_buf_t *out);
/* 1 when the output side supports p's codec. */
int ms_flv_out_supported(const ms_codec_params_t *p);
/* onMetaData (E.5) script body: width, height, codec ids. */
void ms_flv_out_metadata(const ms_codec_params_t *v, const ms_codec_params_t *a, ms_buf_t *out);

/* FLV file framing (E.2, E.3): the 9-byte header plus PreviousTagSize0,
 * and one tag (header, body, PreviousTagSize). */
void ms_flv_file_header(ms_buf_t *out, int has_video, int has_audio);
void ms_flv_file_tag(ms_buf_t *out, uint8_t type, uint32_t ts_ms, const uint8_t *body, size_t len);

/* Player side, shared by RTMP play and HTTP-FLV: which hub tracks go out,
 * the sequence headers and metadata before the first frame, and the
 * output timeline (ms from 0 at the first frame; after a new set of
 * tracks, a discontinuity or a jump of more than 10 s it continues 40 ms
 * after the last time instead, so that timestamps never go back). Video
 * starts at a keyframe; after ms_flv_play_resync() it waits for the next
 * one. */
typedef void (*ms_flv_emit_fn)(void *ud, uint8_t type, uint32_t ts_ms, const uint8_t *body,
                               size_t len);
typedef struct {
    int vtrack, atrack; /* hub track indices, -1 none */
    ms_codec_params_t v, a;
    int headers_sent;
    int need_key;
    int have_base;
    int rebase; /* the next frame starts a new timeline */
    int64_t base_ms, last_ms;
    ms_buf_t scratch;
} ms_flv_play_t;

void ms_flv_play_init(ms_flv_play_t *pl);
void ms_flv_play_free(ms_flv_play_t *pl);
/* The hub's tracks (a new session): picks the first supported video and
 * audio track; headers go out again before the next frame. Returns the
 * number of tracks picked. */
int ms_flv_play_tracks(ms_flv_play_t *pl, const ms_codec_params_t *tracks, int n);
void ms_flv_play_resync(ms_flv_play_t *pl);
/* One hub frame; cur = the current params of its track (a parameter set
 * change re-sends the sequence header at the next keyframe), may be NULL.
 * Calls emit for every tag body it produces. Returns the tags emitted or
 * -ENOMEM. */
int ms_flv_play_frame(ms_flv_play_t *pl, const ms_frame_t *f, const ms_codec_params_t *cur,
                      ms_flv_emit_fn emit, void *ud);

/* Frame time in ms of f on its track's clock. */
int64_t ms_flv_frame_ms(const ms_codec_params_t *p, int64_t t);

#endif
