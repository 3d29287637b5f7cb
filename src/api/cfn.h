/* CloudFormation inside barged: templates (cfn_template.c), the API
 * (cloudformation.c), the engine that carries stack operations out in the
 * control loop (cfn_engine.c) and the resource types it provisions by calling
 * barged's own operations (cfn_resources.c). Internal to src/api. */
#ifndef BARGE_API_CFN_H
#define BARGE_API_CFN_H

#include <jansson.h>

#include "api/api.h"
#include "api/server.h"

#define CFN_KIND_STACK     "cfn_stack"     /* key: StackId */
#define CFN_KIND_EVENT     "cfn_event"     /* key: "<StackId>/<seq, 16 digits>" */
#define CFN_KIND_CHANGESET "cfn_changeset" /* key: ChangeSetId */
#define CFN_KIND_EXPORT    "cfn_export"    /* key: export name */

/* --- templates ----------------------------------------------------------- */

/* Sets err to CloudFormation's ValidationError with the message; returns -1. */
int barge_cfn_error(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);

/* Parses a template in JSON or YAML (with the short forms !Ref, !Sub, ...)
 * and checks its outline: a Resources section of objects with a Type each.
 * *out is a new reference; errors are ValidationError naming what is wrong. */
int barge_cfn_template_parse(const char *body, size_t len, json_t **out, struct barge_error **err);

/* What intrinsic functions are evaluated against. */
struct barge_cfn_eval {
    const json_t *params;     /* {name: value}: a string, or an array for List types */
    const json_t *conditions; /* {name: true/false} */
    const json_t *mappings;
    /* {logical id: {"physical": Ref's value, "attrs": {...}}} made so far */
    const json_t *resources;
    const char *region, *account, *stack_name, *stack_id;
    const json_t *exports; /* {name: value} of every stack */
    json_t *imports;       /* when not NULL, collects {name: true} of the exports used */
};

/* The value AWS::NoValue stands for: callers drop the member it is the value
 * of. Static, never freed. */
json_t *barge_cfn_novalue(void);

/* Evaluates node with its intrinsic functions; new reference, or NULL with a
 * ValidationError. */
json_t *barge_cfn_eval(const struct barge_cfn_eval *ev, const json_t *node,
                       struct barge_error **err);

/* The template's Conditions evaluated with ev's parameters: {name: bool}. */
int barge_cfn_conditions(const struct barge_cfn_eval *ev, const json_t *tpl, json_t **out,
                         struct barge_error **err);

/* The logical ids of tpl's resources whose condition holds (conds), each
 * after those it depends on (DependsOn, Ref, Fn::GetAtt, Fn::Sub); a cycle or
 * a reference to no resource or parameter is a ValidationError. New array. */
int barge_cfn_order(const json_t *tpl, const json_t *conds, json_t **out, struct barge_error **err);

/* The parameters of tpl resolved from given (CloudFormation's Parameters
 * list) with the defaults and previous (the stack's {name: value}, for
 * UsePreviousValue; may be NULL): *values is {name: value} (Lists split on
 * commas), *listed the Parameters list DescribeStacks shows (NoEcho values
 * masked). Values of AWS::SSM::Parameter::Value<...> types still name the SSM
 * parameter; the caller resolves them. */
int barge_cfn_parameters(const json_t *tpl, const json_t *given, const json_t *previous,
                         json_t **values, json_t **listed, struct barge_error **err);

/* What a parameter's value (text) stands for in a template of its type:
 * List types become arrays. New reference. */
json_t *barge_cfn_param_value(const char *type, const char *value);

/* NoEcho parameters' values are kept sealed under barged's master key:
 * barge_cfn_values_seal replaces those of values ({name: text}, per tpl's
 * declarations) with {"sealed": envelope}; barge_cfn_values_open gives a new
 * object with every value as text again (NULL with err when one cannot be
 * opened). */
void barge_cfn_values_seal(struct barge_server *srv, const json_t *tpl, json_t *values);
json_t *barge_cfn_values_open(struct barge_server *srv, const json_t *values,
                              struct barge_error **err);

/* --- resources ----------------------------------------------------------- */

/* What a resource type's handler runs with. */
struct barge_cfn_prov {
    struct barge_server *srv;
    struct barge_sigv4_identity who; /* whose rights the stack acts with */
    const char *stack_name;
    const char *logical;
};

/* Whether barge knows how to provision type. */
bool barge_cfn_type_known(const char *type);

/* Creates a resource of type with props (evaluated): *physical is its
 * physical id (what Ref gives; caller frees), *attrs its Fn::GetAtt values
 * (new object). */
int barge_cfn_resource_create(struct barge_cfn_prov *p, const char *type, const json_t *props,
                              char **physical, json_t **attrs, struct barge_error **err);
/* Brings the resource physical from old_props to props; a type that cannot
 * change in place makes a new one (*physical differs from physical; the
 * caller deletes the old one once the update succeeded). */
int barge_cfn_resource_update(struct barge_cfn_prov *p, const char *type, const char *physical,
                              const json_t *old_props, const json_t *props, char **new_physical,
                              json_t **attrs, struct barge_error **err);
/* Removes the resource; one that is gone already is not an error. */
int barge_cfn_resource_delete(struct barge_cfn_prov *p, const char *type, const char *physical,
                              const json_t *props, struct barge_error **err);

/* --- the engine ---------------------------------------------------------- */

/* Carries out the pending operation of every stack that has one (the
 * leader's stacks thread, src/control/stacks.c, calls it). */
void barge_cfn_step(struct barge_server *srv);
/* Tells waits inside a stack operation that barged is stopping (they give
 * up) or, with false, that it is not. */
void barge_cfn_set_stopping(bool stopping);
/* Sleeps about ms milliseconds; false when barged is stopping. */
bool barge_cfn_pause(int ms);

/* Appends a stack event (in tx; the caller commits). */
int barge_cfn_event_add(struct barge_tx *tx, const json_t *stack, const char *logical,
                        const char *physical, const char *type, const char *status,
                        const char *reason, struct barge_error **err);

#endif
