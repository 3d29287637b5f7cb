/* Writing XML for the APIs that answer in it (S3's REST-XML, CloudWatch's
 * query protocol): escaping and elements. The document itself is a struct
 * barge_buf (common/util.h); the caller frees its data. */
#ifndef BARGE_API_XML_H
#define BARGE_API_XML_H

#include "common/util.h"

/* Appends s with &, <, >, quotes and control characters escaped. */
void barge_xml_text(struct barge_buf *b, const char *s);
/* <tag>escaped value</tag> */
void barge_xml_elem(struct barge_buf *b, const char *tag, const char *value);

#endif
