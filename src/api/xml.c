/* The XML writer shared by the APIs that answer in XML (xml.h). */
#include "api/xml.h"

#include <stdarg.h>
#include <string.h>

void barge_xml_addn(struct barge_xml *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = barge_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void barge_xml_add(struct barge_xml *b, const char *s)
{
    barge_xml_addn(b, s, strlen(s));
}

void barge_xml_printf(struct barge_xml *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = barge_xvasprintf(fmt, ap);
    va_end(ap);
    barge_xml_add(b, s);
}

void barge_xml_text(struct barge_xml *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            barge_xml_add(b, "&amp;");
            break;
        case '<':
            barge_xml_add(b, "&lt;");
            break;
        case '>':
            barge_xml_add(b, "&gt;");
            break;
        case '"':
            barge_xml_add(b, "&quot;");
            break;
        case '\'':
            barge_xml_add(b, "&apos;");
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
                barge_xml_printf(b, "&#%d;", *s);
            else
                barge_xml_addn(b, s, 1);
        }
    }
}

void barge_xml_elem(struct barge_xml *b, const char *tag, const char *value)
{
    barge_xml_printf(b, "<%s>", tag);
    barge_xml_text(b, value);
    barge_xml_printf(b, "</%s>", tag);
}
