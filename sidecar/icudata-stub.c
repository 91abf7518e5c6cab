/*
 * icudata-stub: an empty ICU common data library, ICU's own "stubdata"
 * (icu/source/stubdata) rebuilt for the installed ICU version. Debian's
 * libxml2 links ICU, which links the 31 MB libicudata; libxml2 calls ICU
 * only to convert a document in an encoding iconv lacks, and a task
 * document is UTF-8 (or UTF-16 / Latin-1 / ASCII, which libxml2 handles
 * itself). With this table ICU finds no converter data and libxml2
 * answers such a document as unsupported. ICUDT_SYM is icudtNN_dat.
 */
#include <stdint.h>

struct icu_data_header {
    uint16_t header_size;
    uint8_t magic1, magic2;
    struct {
        uint16_t size, reserved_word;
        uint8_t is_big_endian, charset_family, sizeof_uchar, reserved_byte;
        uint8_t data_format[4], format_version[4], data_version[4];
    } info;
    char padding[8];
    uint32_t count, reserved;
    const void *toc[2];
};

__attribute__((visibility("default"))) const struct icu_data_header ICUDT_SYM = {
    .header_size = 32,
    .magic1 = 0xda,
    .magic2 = 0x27,
    .info = {.size = 20,
             .sizeof_uchar = 2,
             .data_format = {'C', 'm', 'n', 'D'},
             .format_version = {1}},
};
