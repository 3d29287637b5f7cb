/* The XML writer shared by the APIs that answer in XML (xml.h). */
#include "api/xml.h"

void barge_xml_text(struct barge_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            barge_buf_adds(b, "&amp;");
            break;
        case '<':
            barge_buf_adds(b, "&lt;");
            break;
        case '>':
            barge_buf_adds(b, "&gt;");
            break;
        case '"':
            barge_buf_adds(b, "&quot;");
            break;
        case '\'':
            barge_buf_adds(b, "&apos;");
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
                barge_buf_addf(b, "&#%d;", *s);
            else
                barge_buf_addn(b, s, 1);
        }
    }
}

void barge_xml_elem(struct barge_buf *b, const char *tag, const char *value)
{
    barge_buf_addf(b, "<%s>", tag);
    barge_xml_text(b, value);
    barge_buf_addf(b, "</%s>", tag);
}
