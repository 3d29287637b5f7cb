/* Writing XML for the APIs that answer in it (S3's REST-XML, CloudWatch's
 * query protocol): a growable text buffer, escaping and elements. The buffer
 * is always NUL-terminated once anything was added; the caller frees .s. */
#ifndef BARGE_API_XML_H
#define BARGE_API_XML_H

#include <stddef.h>

#include "common/util.h"

struct barge_xml {
    char *s;
    size_t len, cap;
};

void barge_xml_addn(struct barge_xml *b, const char *s, size_t n);
void barge_xml_add(struct barge_xml *b, const char *s);
void barge_xml_printf(struct barge_xml *b, const char *fmt, ...) BARGE_PRINTF(2, 3);
/* Appends s with &, <, >, quotes and control characters escaped. */
void barge_xml_text(struct barge_xml *b, const char *s);
/* <tag>escaped value</tag> */
void barge_xml_elem(struct barge_xml *b, const char *tag, const char *value);

#endif
