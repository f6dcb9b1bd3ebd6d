/*
 * Renders six seconds of patches/kaleidoscope-nights.toml through the C API with a
 * performance (joins, moods, a played note with vibrato and bend, a tempo change, a leave,
 * a cue), in calls of uneven lengths alternating interleaved and planar, and writes the
 * interleaved float frames to a raw file. capi/tests/capi.rs builds it with the system C
 * compiler, runs it and compares the file with the Rust render of the same performance.
 *
 * Usage: render PATCH OUT.raw     (exit status 0 when every check here passed)
 */
#include "tapestry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 48000
#define FRAMES (6 * RATE)

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "render.c:%d: check failed: %s: ", __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

enum Kind { JOIN, LEAVE, MOOD, NOTE_ON, NOTE_OFF, EXPRESSION, TEMPO, CUE };

/* One event of the performance; `name` is an archetype, dimension or section by kind. */
typedef struct {
    uint64_t at;
    enum Kind kind;
    uint32_t participant;
    const char *name;
    uint32_t number; /* pitch, or the mood target / expression kind */
    float value;
    float ramp_secs;
} Event;

/* The same performance as PERFORMANCE in capi.rs, in the same order. */
static const Event EVENTS[] = {
    {0, JOIN, 1, "warp", 0, 0.0f, 0.0f},
    {0, JOIN, 2, "stories", 0, 0.0f, 0.0f},
    {0, JOIN, 3, NULL, 0, 0.0f, 0.0f},
    {0, MOOD, 0, "energy", TAPESTRY_MOOD_TARGET_COMMUNAL, 0.8f, 2.0f},
    {24000, MOOD, 2, "tension", TAPESTRY_MOOD_TARGET_PARTICIPANT, 0.7f, 0.5f},
    {48000, NOTE_ON, 1, NULL, 67, 100.0f, 0.0f},
    {60000, EXPRESSION, 1, NULL, TAPESTRY_EXPRESSION_VIBRATO, 0.6f, 0.0f},
    {72000, EXPRESSION, 1, NULL, TAPESTRY_EXPRESSION_BEND, 2.0f, 0.0f},
    {96000, NOTE_OFF, 1, NULL, 67, 0.0f, 0.0f},
    {100000, TEMPO, 0, NULL, 0, 110.0f, 0.0f},
    {120000, LEAVE, 3, NULL, 0, 0.0f, 0.0f},
    {144000, CUE, 0, "weave", 0, 0.0f, 0.0f},
    {192000, JOIN, 4, "chorus", 0, 0.0f, 0.0f},
    {192000, MOOD, 0, "brightness", TAPESTRY_MOOD_TARGET_COMMUNAL, 0.9f, 1.0f},
};
#define EVENT_COUNT (sizeof EVENTS / sizeof EVENTS[0])

static uint32_t id_of(TapestryEngine *engine,
                      TapestryResult (*lookup)(const TapestryEngine *, const char *, uint32_t *),
                      const char *name) {
    uint32_t id = 0;
    TapestryResult r = lookup(engine, name, &id);
    CHECK(r == TAPESTRY_RESULT_OK, "no id for \"%s\" (result %d)", name, (int)r);
    return id;
}

static TapestryResult post(TapestryEngine *engine, const Event *e) {
    switch (e->kind) {
    case JOIN: {
        int32_t archetype = e->name == NULL
                                ? TAPESTRY_ANY_ARCHETYPE
                                : (int32_t)id_of(engine, tapestry_archetype_id, e->name);
        return tapestry_join(engine, e->participant, archetype, e->at);
    }
    case LEAVE:
        return tapestry_leave(engine, e->participant, e->at);
    case MOOD:
        return tapestry_mood(engine, e->number, e->participant,
                             id_of(engine, tapestry_dimension_id, e->name), e->value,
                             e->ramp_secs, e->at);
    case NOTE_ON:
        return tapestry_note_on(engine, e->participant, e->number, (uint32_t)e->value, e->at);
    case NOTE_OFF:
        return tapestry_note_off(engine, e->participant, e->number, e->at);
    case EXPRESSION:
        return tapestry_expression(engine, e->participant, e->number, e->value, e->at);
    case TEMPO:
        return tapestry_tempo(engine, e->value, e->at);
    case CUE:
        return tapestry_cue(engine, id_of(engine, tapestry_section_id, e->name), e->at);
    }
    return TAPESTRY_RESULT_INVALID_ARGUMENT;
}

/* Calls that must be refused, and refused without posting anything. */
static void check_refusals(TapestryEngine *engine) {
    uint32_t id = 0;
    float scratch[2] = {1.0f, 1.0f};
    CHECK(tapestry_dimension_id(engine, "no such mood", &id) == TAPESTRY_RESULT_UNKNOWN_NAME,
          "an unknown dimension");
    CHECK(tapestry_section_id(engine, NULL, &id) == TAPESTRY_RESULT_NULL_ARGUMENT, "a NULL name");
    CHECK(tapestry_note_on(engine, 1, 128, 100, TAPESTRY_NOW) ==
              TAPESTRY_RESULT_INVALID_ARGUMENT,
          "pitch 128");
    CHECK(tapestry_note_on(engine, 1, 60, 0, TAPESTRY_NOW) == TAPESTRY_RESULT_INVALID_ARGUMENT,
          "velocity 0");
    CHECK(tapestry_mood(engine, 7, 1, 0, 0.5f, 0.0f, TAPESTRY_NOW) ==
              TAPESTRY_RESULT_INVALID_ARGUMENT,
          "mood target 7");
    CHECK(tapestry_mood(engine, TAPESTRY_MOOD_TARGET_COMMUNAL, 0,
                        tapestry_dimension_count(engine), 0.5f, 0.0f, TAPESTRY_NOW) ==
              TAPESTRY_RESULT_INVALID_ARGUMENT,
          "a dimension past the last");
    CHECK(tapestry_mood(engine, TAPESTRY_MOOD_TARGET_COMMUNAL, 0, 0, NAN, 0.0f, TAPESTRY_NOW) ==
              TAPESTRY_RESULT_INVALID_ARGUMENT,
          "a NaN mood");
    CHECK(tapestry_tempo(engine, 500.0f, TAPESTRY_NOW) == TAPESTRY_RESULT_INVALID_ARGUMENT,
          "500 BPM");
    CHECK(tapestry_join(engine, 9, 999, TAPESTRY_NOW) == TAPESTRY_RESULT_INVALID_ARGUMENT,
          "archetype 999");
    CHECK(tapestry_process_interleaved(NULL, scratch, 1) == TAPESTRY_RESULT_NULL_ARGUMENT &&
              scratch[0] == 0.0f && scratch[1] == 0.0f,
          "processing no engine silences the buffer");
    CHECK(tapestry_process_planar(engine, scratch, scratch, 1) ==
              TAPESTRY_RESULT_INVALID_ARGUMENT,
          "planar channels that alias");
    CHECK(tapestry_status(engine, NULL) == TAPESTRY_RESULT_NULL_ARGUMENT, "a NULL status");
}

/* A patch with an error: the message names the text, its line and column. */
static void check_patch_error(void) {
    TapestryEngine *engine = (TapestryEngine *)&engine; /* must be reset to NULL */
    char *error = NULL;
    const char *text = "version = 1\n[piece]\nname = 5\n";
    TapestryResult r = tapestry_engine_create_from_text(text, "broken.toml", NULL, &engine, &error);
    CHECK(r == TAPESTRY_RESULT_PATCH_ERROR, "result %d", (int)r);
    CHECK(engine == NULL, "no engine on failure");
    CHECK(error != NULL && strstr(error, "broken.toml:3:8: piece.name") != NULL, "message: %s",
          error ? error : "(none)");
    tapestry_string_free(error);
}

/* Renders frames [done, done + n) into out: interleaved, or planar through left/right. */
static void render_block(TapestryEngine *engine, float *out, size_t n, int planar, float *left,
                         float *right) {
    TapestryResult r;
    if (!planar) {
        r = tapestry_process_interleaved(engine, out, n);
    } else {
        r = tapestry_process_planar(engine, left, right, n);
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = left[i];
            out[2 * i + 1] = right[i];
        }
    }
    CHECK(r == TAPESTRY_RESULT_OK, "process returned %d", (int)r);
}

static void render(TapestryEngine *engine, float *out) {
    static const size_t sizes[] = {1, 37, 256, 1000, 64, 9000, 480, 3, 8192};
    const size_t longest = 9000;
    float *left = malloc(longest * sizeof(float));
    float *right = malloc(longest * sizeof(float));
    CHECK(left != NULL && right != NULL, "out of memory");
    size_t done = 0, next = 0, call = 0;
    while (done < FRAMES) {
        size_t n = sizes[call % (sizeof sizes / sizeof sizes[0])];
        if (n > FRAMES - done) {
            n = FRAMES - done;
        }
        /* hand over what is due before this block ends; each lands on its own sample */
        while (next < EVENT_COUNT && EVENTS[next].at < done + n) {
            TapestryResult r = post(engine, &EVENTS[next]);
            CHECK(r == TAPESTRY_RESULT_OK, "event %zu: result %d", next, (int)r);
            next++;
        }
        render_block(engine, out + 2 * done, n, (int)(call % 2), left, right);
        done += n;
        call++;
    }
    free(left);
    free(right);
}

static void check_output(const float *out) {
    double sum = 0.0;
    for (size_t i = 0; i < 2 * (size_t)FRAMES; i++) {
        CHECK(isfinite(out[i]), "sample %zu is %f", i, out[i]);
        sum += (double)out[i] * out[i];
    }
    double rms = sqrt(sum / (2.0 * FRAMES));
    CHECK(rms > 0.01, "rms %g: silent", rms);
}

static void check_status(TapestryEngine *engine) {
    TapestryStatus s;
    CHECK(tapestry_status(engine, &s) == TAPESTRY_RESULT_OK, "status");
    CHECK(s.sample_position == FRAMES, "position %llu", (unsigned long long)s.sample_position);
    CHECK(s.participants == 3, "%u participants (1, 2 and 4)", s.participants);
    CHECK(strcmp(tapestry_section_name(engine, s.section), "weave") == 0, "section %s",
          tapestry_section_name(engine, s.section));
    CHECK(s.tempo_bpm == 110.0f, "tempo %f", s.tempo_bpm);
    CHECK(s.refused_messages == 0, "%llu refused", (unsigned long long)s.refused_messages);
    CHECK(s.voice_lanes > 0 && s.voice_chunks > 0, "load %u lanes", s.voice_lanes);
    CHECK(isfinite(s.momentary_lufs) && s.momentary_lufs > -40.0f, "%f LUFS", s.momentary_lufs);
    uint32_t energy = id_of(engine, tapestry_dimension_id, "energy");
    float mood = 0.0f;
    CHECK(tapestry_mood_value(engine, energy, &mood) == TAPESTRY_RESULT_OK, "mood");
    CHECK(mood > 0.75f && mood <= 0.8f, "communal energy %f (smoothed towards 0.8)", mood);
}

int main(int argc, char **argv) {
    CHECK(argc == 3, "usage: render PATCH OUT.raw");
    check_patch_error();
    TapestryOptions options = tapestry_options_default();
    options.sample_rate = RATE;
    TapestryEngine *engine = NULL;
    char *error = NULL;
    TapestryResult r = tapestry_engine_create_from_path(argv[1], &options, &engine, &error);
    CHECK(r == TAPESTRY_RESULT_OK, "create: %s", error ? error : "(no message)");
    check_refusals(engine);

    float *out = malloc(2 * (size_t)FRAMES * sizeof(float));
    CHECK(out != NULL, "out of memory");
    render(engine, out);
    check_output(out);
    check_status(engine);
    tapestry_engine_destroy(engine);

    FILE *file = fopen(argv[2], "wb");
    CHECK(file != NULL, "cannot open %s", argv[2]);
    CHECK(fwrite(out, sizeof(float), 2 * (size_t)FRAMES, file) == 2 * (size_t)FRAMES, "write");
    CHECK(fclose(file) == 0, "close");
    free(out);
    return 0;
}
