/* SDP parsing with SDPs in the style of real cameras and servers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "media/rtsp/sdp.h"
#include "media/rtsp/url.h"

/* gst-rtsp-server answer for videotestsrc ! x264enc ! rtph264pay */
static const char *gst_sdp =
    "v=0\r\n"
    "o=- 1188340656180883 1 IN IP4 127.0.0.1\r\n"
    "s=Session streamed with GStreamer\r\n"
    "i=rtsp-server\r\n"
    "t=0 0\r\n"
    "a=tool:GStreamer\r\n"
    "a=type:broadcast\r\n"
    "a=range:npt=now-\r\n"
    "a=control:rtsp://127.0.0.1:8554/test\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "b=AS:2097\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=framerate:30\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAFKzZQUH7ARAAAAMAEAAAAwPA8UKZYA==,"
    "aOvjyyLA;profile-level-id=640014;level-asymmetry-allowed=1\r\n"
    "a=control:rtsp://127.0.0.1:8554/test/stream=0\r\n"
    "a=ts-refclk:local\r\n"
    "a=mediaclk:sender\r\n";

/* Hikvision / Axis style: H.264 + PCMU (static PT 0) + ONVIF metadata */
static const char *hik_sdp =
    "v=0\n"
    "o=- 1109162014219182 1109162014219192 IN IP4 192.0.2.64\n"
    "s=Media Presentation\n"
    "e=NONE\n"
    "b=AS:5100\n"
    "t=0 0\n"
    "a=control:rtsp://192.0.2.64:554/Streaming/Channels/101/?transportmode=unicast\n"
    "m=video 0 RTP/AVP 96\n"
    "c=IN IP4 0.0.0.0\n"
    "b=AS:5000\n"
    "a=recvonly\n"
    "a=x-dimensions:1920,1080\n"
    "a=control:trackID=1\n"
    "a=rtpmap:96 H264/90000\n"
    "a=fmtp:96 profile-level-id=420029; packetization-mode=1; "
    "sprop-parameter-sets=Z01AKI2NQDwBE/LCAAAOEAACvyAI,aO44gA==\n"
    "m=audio 0 RTP/AVP 0\n"
    "c=IN IP4 0.0.0.0\n"
    "b=AS:50\n"
    "a=recvonly\n"
    "a=control:trackID=2\n"
    "a=Media_header:MEDIAINFO="
    "494D4B48010100000400010010710110401F000000FA000000000000000000000000000000000000;\n"
    "m=application 0 RTP/AVP 107\n"
    "c=IN IP4 0.0.0.0\n"
    "b=AS:50\n"
    "a=recvonly\n"
    "a=control:trackID=3\n"
    "a=rtpmap:107 vnd.onvif.metadata/90000\n"
    "a=Media_header:MEDIAINFO="
    "494D4B48010100000400010010710110401F000000FA000000000000000000000000000000000000;\n"
    "a=appversion:1.0\n";

static const char *h265_sdp =
    "v=0\r\n"
    "o=- 0 0 IN IP4 127.0.0.1\r\n"
    "s=No Name\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "t=0 0\r\n"
    "a=tool:libavformat 59.27.100\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H265/90000\r\n"
    "a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ; "
    "sprop-sps=QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVmkkyvAQAAAAwBAAAAFAg==; "
    "sprop-pps=RAHBcrRiQA==\r\n"
    "a=control:streamid=0\r\n"
    "m=audio 0 RTP/AVP 97\r\n"
    "b=AS:128\r\n"
    "a=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
    "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;"
    "indexdeltalength=3; config=119056E500\r\n"
    "a=control:streamid=1\r\n"
    "m=audio 0 RTP/AVP 98\r\n"
    "a=rtpmap:98 opus/48000/2\r\n"
    "a=control:streamid=2\r\n";

static void test_gst(void **state)
{
    (void)state;
    ms_sdp_t s;
    assert_int_equal(ms_sdp_parse(gst_sdp, strlen(gst_sdp), &s), 0);
    assert_string_equal(s.session_name, "Session streamed with GStreamer");
    assert_string_equal(s.range, "npt=now-");
    assert_string_equal(s.control, "rtsp://127.0.0.1:8554/test");
    assert_int_equal(s.nmedia, 1);
    const ms_sdp_media_t *m = &s.media[0];
    assert_string_equal(m->media, "video");
    assert_string_equal(m->proto, "RTP/AVP");
    assert_int_equal(m->codec, MS_CODEC_H264);
    assert_int_equal(m->kind, MS_TRACK_VIDEO);
    assert_non_null(m->fmt);
    assert_int_equal(m->fmt->pt, 96);
    assert_int_equal(m->fmt->clock_rate, 90000);
    assert_string_equal(m->control, "rtsp://127.0.0.1:8554/test/stream=0");
    assert_string_equal(m->connection, "0.0.0.0");
    char v[128];
    assert_int_equal(ms_rtp_fmtp_get(m->fmt->fmtp, "profile-level-id", v, sizeof v), 6);
    assert_string_equal(v, "640014");
    assert_true(ms_rtp_fmtp_get(m->fmt->fmtp, "sprop-parameter-sets", v, sizeof v) > 0);
    assert_string_equal(v, "Z2QAFKzZQUH7ARAAAAMAEAAAAwPA8UKZYA==,aOvjyyLA");
    assert_int_equal(ms_rtp_fmtp_get(m->fmt->fmtp, "nope", v, sizeof v), -1);
    assert_int_equal(ms_sdp_usable(&s), 1);
    ms_sdp_free(&s);
}

static void test_hik(void **state)
{
    (void)state;
    ms_sdp_t s;
    assert_int_equal(ms_sdp_parse(hik_sdp, strlen(hik_sdp), &s), 0);
    assert_int_equal(s.nmedia, 3);
    assert_int_equal(s.media[0].codec, MS_CODEC_H264);
    assert_int_equal(s.media[0].direction_recvonly, 1);
    assert_string_equal(s.media[0].control, "trackID=1");
    assert_int_equal(s.media[1].codec, MS_CODEC_PCMU);
    assert_int_equal(s.media[1].kind, MS_TRACK_AUDIO);
    assert_int_equal(s.media[1].fmt->clock_rate, 8000);
    assert_int_equal(s.media[1].fmt->channels, 1);
    assert_int_equal(s.media[2].codec, MS_CODEC_ONVIF_META);
    assert_int_equal(s.media[2].kind, MS_TRACK_APP);
    assert_int_equal(s.media[2].fmt->pt, 107);
    char v[32];
    assert_int_equal(ms_rtp_fmtp_get(s.media[0].fmt->fmtp, "packetization-mode", v, sizeof v), 1);
    assert_string_equal(v, "1");
    /* control resolution against the session-level control as Content-Base */
    char url[256];
    assert_true(ms_rtsp_url_resolve(s.control, s.media[1].control, url, sizeof url) > 0);
    assert_string_equal(url, "rtsp://192.0.2.64:554/Streaming/Channels/101/trackID=2");
    assert_int_equal(ms_sdp_usable(&s), 3);
    ms_sdp_free(&s);
}

static void test_h265_aac(void **state)
{
    (void)state;
    ms_sdp_t s;
    assert_int_equal(ms_sdp_parse(h265_sdp, strlen(h265_sdp), &s), 0);
    assert_int_equal(s.nmedia, 3);
    assert_string_equal(s.connection, "0.0.0.0");
    assert_int_equal(s.media[0].codec, MS_CODEC_H265);
    char v[128];
    assert_true(ms_rtp_fmtp_get(s.media[0].fmt->fmtp, "sprop-vps", v, sizeof v) > 0);
    assert_string_equal(v, "QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ");
    assert_true(ms_rtp_fmtp_get(s.media[0].fmt->fmtp, "sprop-pps", v, sizeof v) > 0);
    assert_string_equal(v, "RAHBcrRiQA==");
    assert_int_equal(s.media[1].codec, MS_CODEC_AAC);
    assert_int_equal(s.media[1].fmt->clock_rate, 48000);
    assert_int_equal(s.media[1].fmt->channels, 2);
    assert_true(ms_rtp_fmtp_get(s.media[1].fmt->fmtp, "config", v, sizeof v) > 0);
    assert_string_equal(v, "119056E500");
    /* opus is not supported */
    assert_int_equal(s.media[2].codec, MS_CODEC_NONE);
    assert_null(s.media[2].fmt);
    assert_int_equal(ms_sdp_usable(&s), 2);
    ms_sdp_free(&s);
}

static void test_unsupported_and_bad(void **state)
{
    (void)state;
    ms_sdp_t s;
    const char *mjpeg = "v=0\r\ns=x\r\nm=video 0 RTP/AVP 26\r\na=control:t0\r\n"
                        "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000\r\n"
                        "a=fmtp:97 mode=AAC-lbr;config=1408\r\n";
    assert_int_equal(ms_sdp_parse(mjpeg, strlen(mjpeg), &s), 0);
    assert_int_equal(s.nmedia, 2);
    assert_int_equal(ms_sdp_usable(&s), 0);
    ms_sdp_free(&s);

    assert_int_equal(ms_sdp_parse("hello", 5, &s), -EINVAL);
    ms_sdp_free(&s);
    assert_int_equal(ms_sdp_parse("v=0\r\ns=x\r\n", 10, &s), -EINVAL);
    ms_sdp_free(&s);
    assert_int_equal(ms_sdp_parse("", 0, &s), -EINVAL);
    ms_sdp_free(&s);

    /* several PTs on one m= line: the first usable one wins */
    const char *multi = "v=0\nm=audio 0 RTP/AVP 98 8 0\na=rtpmap:98 L16/8000\n"
                        "a=rtpmap:8 PCMA/8000\n";
    assert_int_equal(ms_sdp_parse(multi, strlen(multi), &s), 0);
    assert_int_equal(s.media[0].nformats, 3);
    assert_int_equal(s.media[0].codec, MS_CODEC_PCMA);
    assert_int_equal(s.media[0].fmt->pt, 8);
    ms_sdp_free(&s);

    /* more than 16 media sections: the extra ones are ignored */
    char big[4096] = "v=0\n";
    for (int i = 0; i < 20; i++)
        strcat(big, "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n");
    assert_int_equal(ms_sdp_parse(big, strlen(big), &s), 0);
    assert_int_equal(s.nmedia, MS_SDP_MAX_MEDIA);
    assert_int_equal(ms_sdp_usable(&s), MS_SDP_MAX_MEDIA);
    ms_sdp_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gst),
        cmocka_unit_test(test_hik),
        cmocka_unit_test(test_h265_aac),
        cmocka_unit_test(test_unsupported_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
