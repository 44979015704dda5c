/* One keyframe -> JPEG (full size and preview size), in-process:
 * libavcodec H.264 (ISO/IEC 14496-10) / H.265 (ISO/IEC 23008-2) decoder,
 * libswscale to full-range YUV 4:2:0, libavcodec MJPEG encoder (ITU-T T.81
 * baseline, JFIF). The frame payload (4-byte length-prefixed NAL units,
 * media/stream/frame.h) is rewritten as an Annex-B byte stream (ISO/IEC
 * 14496-10 Annex B) with the track's parameter sets in front. */
#include <errno.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "media/codec/nal.h"
#include "media/snapshot/snapshot.h"
#include "util/buf.h"

static void put_nal(ms_buf_t *b, const uint8_t *nal, size_t len)
{
    static const uint8_t sc[4] = {0, 0, 0, 1};
    if (!len)
        return;
    ms_buf_append(b, sc, 4);
    ms_buf_append(b, nal, len);
}

/* Decodes one access unit into a new frame (NULL on failure). */
static AVFrame *decode(const ms_codec_params_t *p, const uint8_t *payload, size_t len, int *err)
{
    enum AVCodecID id = p->codec == MS_CODEC_H264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC;
    const AVCodec *dec = avcodec_find_decoder(id);
    AVCodecContext *dc = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    ms_buf_t b = MS_BUF_INIT;
    *err = -EIO;
    if (!dec)
        goto err;
    put_nal(&b, p->vps, p->vps_len);
    put_nal(&b, p->sps, p->sps_len);
    put_nal(&b, p->pps, p->pps_len);
    size_t off = 0;
    const uint8_t *nal;
    size_t nlen;
    int r;
    while ((r = ms_nal_next(payload, len, &off, &nal, &nlen)) == 1)
        put_nal(&b, nal, nlen);
    if (r < 0 || b.err) {
        *err = b.err ? -ENOMEM : -EIO;
        goto err;
    }
    dc = avcodec_alloc_context3(dec);
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (!dc || !pkt || !fr) {
        *err = -ENOMEM;
        goto err;
    }
    dc->thread_count = 1;
    if (avcodec_open2(dc, dec, NULL) < 0)
        goto err;
    if (av_new_packet(pkt, (int)b.len) < 0) {
        *err = -ENOMEM;
        goto err;
    }
    memcpy(pkt->data, b.data, b.len);
    pkt->flags |= AV_PKT_FLAG_KEY;
    if (avcodec_send_packet(dc, pkt) < 0)
        goto err;
    avcodec_send_packet(dc, NULL); /* drain: the picture comes out now */
    if (avcodec_receive_frame(dc, fr) < 0 || fr->width <= 0 || fr->height <= 0)
        goto err;
    av_packet_free(&pkt);
    avcodec_free_context(&dc);
    ms_buf_free(&b);
    *err = 0;
    return fr;
err:
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dc);
    ms_buf_free(&b);
    return NULL;
}

/* Scales src to w x h full-range YUV 4:2:0 and encodes it as JPEG. */
static int encode_jpeg(const AVFrame *src, int w, int h, int q, ms_blob_t **out)
{
    const AVCodec *enc = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *ec = NULL;
    AVFrame *dst = NULL;
    AVPacket *pkt = NULL;
    struct SwsContext *sws = NULL;
    int rc = -EIO;
    if (!enc)
        return -EIO;
    sws = sws_getContext(src->width, src->height, (enum AVPixelFormat)src->format, w, h,
                         AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
    ec = avcodec_alloc_context3(enc);
    dst = av_frame_alloc();
    pkt = av_packet_alloc();
    if (!sws || !ec || !dst || !pkt) {
        rc = -ENOMEM;
        goto out;
    }
    /* Video range in, JPEG (full) range out (ITU-T T.871 / JFIF). */
    const int *coefs = sws_getCoefficients(SWS_CS_DEFAULT);
    sws_setColorspaceDetails(sws, coefs, src->color_range == AVCOL_RANGE_JPEG, coefs, 1, 0, 1 << 16,
                             1 << 16);
    dst->format = AV_PIX_FMT_YUV420P;
    dst->width = w;
    dst->height = h;
    dst->color_range = AVCOL_RANGE_JPEG;
    if (av_frame_get_buffer(dst, 0) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst->data,
              dst->linesize);
    ec->width = w;
    ec->height = h;
    ec->pix_fmt = AV_PIX_FMT_YUV420P;
    ec->color_range = AVCOL_RANGE_JPEG;
    ec->time_base = (AVRational){1, 25};
    ec->flags |= AV_CODEC_FLAG_QSCALE;
    ec->global_quality = FF_QP2LAMBDA * q;
    ec->qmin = ec->qmax = q;
    ec->thread_count = 1;
    if (avcodec_open2(ec, enc, NULL) < 0)
        goto out;
    dst->quality = ec->global_quality;
    dst->pict_type = AV_PICTURE_TYPE_I;
    dst->pts = 0;
    if (avcodec_send_frame(ec, dst) < 0 || avcodec_receive_packet(ec, pkt) < 0 || pkt->size <= 0)
        goto out;
    *out = ms_blob_new(pkt->data, (size_t)pkt->size);
    rc = *out ? 0 : -ENOMEM;
out:
    av_packet_free(&pkt);
    av_frame_free(&dst);
    avcodec_free_context(&ec);
    sws_freeContext(sws);
    return rc;
}

int ms_snapshot_encode(const ms_codec_params_t *p, const uint8_t *payload, size_t len,
                       int preview_width, int quality, ms_blob_t **full, ms_blob_t **preview)
{
    *full = *preview = NULL;
    if (p->codec != MS_CODEC_H264 && p->codec != MS_CODEC_H265)
        return -EINVAL;
    if (quality < 2 || quality > 31)
        quality = 4;
    int rc;
    AVFrame *fr = decode(p, payload, len, &rc);
    if (!fr)
        return rc;
    int w = fr->width, h = fr->height;
    int pw = preview_width > 0 && preview_width < w ? preview_width : w;
    int ph = (int)(((int64_t)h * pw + w / 2) / w);
    pw &= ~1;
    ph &= ~1;
    if (pw < 2)
        pw = 2;
    if (ph < 2)
        ph = 2;
    rc = encode_jpeg(fr, w, h, quality, full);
    if (rc == 0)
        rc = encode_jpeg(fr, pw, ph, quality, preview);
    av_frame_free(&fr);
    if (rc < 0) {
        ms_blob_unref(*full);
        ms_blob_unref(*preview);
        *full = *preview = NULL;
    }
    return rc;
}
