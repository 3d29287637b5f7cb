/* EC2, read only: the Describe calls that CDK's context lookups
 * (ec2.Vpc.fromLookup, SecurityGroup.fromLookupByName, availabilityZones)
 * make. barged has no EC2 networking of its own; what it shows is a default
 * VPC per region (a /16 with one public subnet per Availability Zone, a main
 * route table with a route to an internet gateway and a default security
 * group), and the VPCs, subnets, route tables and security groups that the
 * region's CloudFormation stacks recorded (cfn_resources.c). Each call
 * gathers them afresh from the stacks, then applies the ids and Filters of
 * the request. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/cfn.h"
#include "api/server.h"
#include "common/json.h"
#include "common/sigv4.h"

#define DEFAULT_CIDR "172.31.0.0/16"
static const char *const az_letters[] = {"a", "b", "c"};

/* What the region holds, each a list of EC2-shaped items. */
struct view {
    json_t *vpcs, *subnets, *tables, *groups;
};

static void view_release(struct view *v)
{
    json_decref(v->vpcs);
    json_decref(v->subnets);
    json_decref(v->tables);
    json_decref(v->groups);
}

/* A stable id of the default VPC's parts: prefix and 17 hex digits of a
 * hash of the region and what. */
static json_t *stable_id(const char *prefix, const char *region, const char *what)
{
    _cleanup_free_ char *seed = barge_xasprintf("%s/%s", region, what);
    char hex[65];
    barge_sha256_hex(seed, strlen(seed), hex);
    return json_sprintf("%s%.17s", prefix, hex);
}

/* The id's part after its prefix ("vpc-"), from which ids derived from it
 * are made. */
static const char *id_tail(const char *id)
{
    const char *dash = strchr(id, '-');
    return dash ? dash + 1 : id;
}

static json_t *allow_all_egress(void)
{
    return json_pack("[{s:s, s:[{s:s}], s:[], s:[], s:[]}]", "IpProtocol", "-1", "IpRanges",
                     "CidrIp", "0.0.0.0/0", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs");
}

static json_t *vpc_item(const char *id, const char *cidr, bool is_default, const char *owner,
                        json_t *tags)
{
    char assoc[40];
    snprintf(assoc, sizeof(assoc), "vpc-cidr-assoc-%.17s", id_tail(id));
    return json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:{s:s}}], s:o}", "VpcId",
                     id, "CidrBlock", cidr, "IsDefault", is_default, "State", "available",
                     "OwnerId", owner, "InstanceTenancy", "default", "DhcpOptionsId",
                     "dopt-00000000000000000", "CidrBlockAssociationSet", "AssociationId", assoc,
                     "CidrBlock", cidr, "CidrBlockState", "State", "associated", "Tags",
                     tags ? tags : json_array());
}

static json_t *subnet_item(struct barge_server *srv, const char *id, const char *vpc,
                           const char *cidr, const char *az, bool default_for_az, bool map_public,
                           json_t *tags)
{
    const char *owner = srv->cfg.account_id;
    _cleanup_free_ char *arn =
        barge_xasprintf("arn:aws:ec2:%s:%s:subnet/%s", barge_server_region(srv), owner, id);
    int bits = 24;
    const char *slash = strchr(cidr, '/');
    if (slash)
        sscanf(slash + 1, "%d", &bits);
    long long free_ips = bits >= 0 && bits <= 28 ? (1LL << (32 - bits)) - 5 : 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:s, s:s, s:s, s:o}", "SubnetId", id,
                     "VpcId", vpc, "CidrBlock", cidr, "AvailabilityZone", az, "AvailabilityZoneId",
                     az, "AvailableIpAddressCount", free_ips, "DefaultForAz", default_for_az,
                     "MapPublicIpOnLaunch", map_public, "State", "available", "OwnerId", owner,
                     "SubnetArn", arn, "Tags", tags ? tags : json_array());
}

static json_t *local_route(const char *cidr)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "DestinationCidrBlock", cidr, "GatewayId", "local",
                     "State", "active", "Origin", "CreateRouteTable");
}

static json_t *main_assoc(const char *table)
{
    char id[40];
    snprintf(id, sizeof(id), "rtbassoc-%.17s", id_tail(table));
    return json_pack("{s:b, s:s, s:s, s:{s:s}}", "Main", true, "RouteTableAssociationId", id,
                     "RouteTableId", table, "AssociationState", "State", "associated");
}

static json_t *table_item(const char *id, const char *vpc, const char *owner, json_t *routes,
                          json_t *assocs, json_t *tags)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:[], s:o}", "RouteTableId", id, "VpcId", vpc,
                     "OwnerId", owner, "Routes", routes, "Associations", assocs, "PropagatingVgws",
                     "Tags", tags ? tags : json_array());
}

static json_t *group_item(const char *id, const char *name, const char *desc, const char *vpc,
                          const char *owner, json_t *ingress, json_t *egress, json_t *tags)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "GroupId", id, "GroupName", name,
                     "Description", desc, "VpcId", vpc, "OwnerId", owner, "IpPermissions",
                     ingress ? ingress : json_array(), "IpPermissionsEgress",
                     egress ? egress : allow_all_egress(), "Tags", tags ? tags : json_array());
}

static void add_default_vpc(struct barge_server *srv, struct view *v)
{
    const char *region = barge_server_region(srv), *owner = srv->cfg.account_id;
    _cleanup_json_ json_t *vpc = stable_id("vpc-", region, "vpc");
    _cleanup_json_ json_t *igw = stable_id("igw-", region, "igw");
    _cleanup_json_ json_t *rtb = stable_id("rtb-", region, "rtb");
    _cleanup_json_ json_t *sg = stable_id("sg-", region, "sg");
    const char *vpc_id = json_string_value(vpc);
    json_array_append_new(v->vpcs, vpc_item(vpc_id, DEFAULT_CIDR, true, owner, NULL));
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(az_letters); i++) {
        _cleanup_free_ char *az = barge_xasprintf("%s%s", region, az_letters[i]);
        _cleanup_free_ char *cidr = barge_xasprintf("172.31.%zu.0/20", i * 16);
        _cleanup_json_ json_t *id = stable_id("subnet-", region, az);
        json_array_append_new(v->subnets, subnet_item(srv, json_string_value(id), vpc_id, cidr, az,
                                                      true, true, NULL));
    }
    json_t *routes = json_array();
    json_array_append_new(routes, local_route(DEFAULT_CIDR));
    json_array_append_new(routes, json_pack("{s:s, s:s, s:s, s:s}", "DestinationCidrBlock",
                                            "0.0.0.0/0", "GatewayId", json_string_value(igw),
                                            "State", "active", "Origin", "CreateRoute"));
    json_array_append_new(v->tables,
                          table_item(json_string_value(rtb), vpc_id, owner, routes,
                                     json_pack("[o]", main_assoc(json_string_value(rtb))), NULL));
    json_array_append_new(v->groups,
                          group_item(json_string_value(sg), "default", "default VPC security group",
                                     vpc_id, owner, NULL, NULL, NULL));
}

/* A stack resource's tags as EC2 shows them: the template's and the ones
 * CloudFormation adds. */
static json_t *stack_tags(const json_t *stack, const char *logical, const json_t *props)
{
    json_t *tags = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(props, "Tags"), i, t)
    {
        if (json_is_string(json_object_get(t, "Key")))
            json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", barge_json_str(t, "Key", ""),
                                                  "Value", barge_json_str(t, "Value", "")));
    }
    json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", "aws:cloudformation:stack-name",
                                          "Value", barge_json_str(stack, "StackName", "")));
    json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", "aws:cloudformation:stack-id",
                                          "Value", barge_json_str(stack, "StackId", "")));
    json_array_append_new(
        tags, json_pack("{s:s, s:s}", "Key", "aws:cloudformation:logical-id", "Value", logical));
    return tags;
}

/* One CloudFormation rule (SecurityGroupIngress/Egress shape) as an EC2
 * IpPermission. */
static json_t *permission(const json_t *rule, bool egress)
{
    json_t *p = json_object();
    json_object_set_new(p, "IpProtocol", json_string(barge_json_str(rule, "IpProtocol", "-1")));
    const json_t *from = json_object_get(rule, "FromPort"), *to = json_object_get(rule, "ToPort");
    if (from)
        json_object_set_new(p, "FromPort",
                            json_integer(json_is_string(from) ? atoll(json_string_value(from))
                                                              : json_integer_value(from)));
    if (to)
        json_object_set_new(p, "ToPort",
                            json_integer(json_is_string(to) ? atoll(json_string_value(to))
                                                            : json_integer_value(to)));
    json_t *v4 = json_array(), *v6 = json_array(), *pairs = json_array();
    const char *cidr = barge_json_str(rule, "CidrIp", NULL);
    const char *cidr6 = barge_json_str(rule, "CidrIpv6", NULL);
    const char *peer =
        barge_json_str(rule, egress ? "DestinationSecurityGroupId" : "SourceSecurityGroupId", NULL);
    const char *desc = barge_json_str(rule, "Description", NULL);
    if (cidr) {
        json_t *r = json_pack("{s:s}", "CidrIp", cidr);
        if (desc)
            json_object_set_new(r, "Description", json_string(desc));
        json_array_append_new(v4, r);
    }
    if (cidr6)
        json_array_append_new(v6, json_pack("{s:s}", "CidrIpv6", cidr6));
    if (peer)
        json_array_append_new(pairs, json_pack("{s:s}", "GroupId", peer));
    json_object_set_new(p, "IpRanges", v4);
    json_object_set_new(p, "Ipv6Ranges", v6);
    json_object_set_new(p, "UserIdGroupPairs", pairs);
    json_object_set_new(p, "PrefixListIds", json_array());
    return p;
}

static json_t *permissions(const json_t *rules, bool egress)
{
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) json_array_append_new(out, permission(r, egress));
    return out;
}

static json_t *find_by(json_t *list, const char *key, const char *value)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) if (barge_streq(barge_json_str(x, key, NULL), value)) return x;
    return NULL;
}

/* A resource entry of a stack that still stands. */
static bool standing(const json_t *e)
{
    const char *status = barge_json_str(e, "status", "");
    return json_is_string(json_object_get(e, "physical")) && strcmp(status, "DELETE_COMPLETE") &&
           strcmp(status, "CREATE_FAILED");
}

/* The VPCs, route tables and security groups a stack recorded. */
static void add_containers(struct barge_server *srv, const json_t *stack, struct view *v)
{
    const char *owner = srv->cfg.account_id;
    const json_t *res = json_object_get(stack, "resources");
    const char *logical;
    json_t *e;
    json_object_foreach((json_t *)res, logical, e)
    {
        if (!standing(e))
            continue;
        const char *type = barge_json_str(e, "type", ""), *id = barge_json_str(e, "physical", "");
        const json_t *props = json_object_get(e, "props"), *attrs = json_object_get(e, "attrs");
        if (!strcmp(type, "AWS::EC2::VPC")) {
            const char *cidr = barge_json_str(props, "CidrBlock", "10.0.0.0/16");
            json_array_append_new(
                v->vpcs, vpc_item(id, cidr, false, owner, stack_tags(stack, logical, props)));
            char rtb[40];
            snprintf(rtb, sizeof(rtb), "rtb-%.17s", id_tail(id));
            json_array_append_new(v->tables,
                                  table_item(rtb, id, owner, json_pack("[o]", local_route(cidr)),
                                             json_pack("[o]", main_assoc(rtb)), NULL));
            const char *dsg = barge_json_str(attrs, "DefaultSecurityGroup", NULL);
            if (dsg)
                json_array_append_new(v->groups,
                                      group_item(dsg, "default", "default VPC security group", id,
                                                 owner, NULL, NULL, NULL));
        } else if (!strcmp(type, "AWS::EC2::RouteTable")) {
            json_array_append_new(v->tables, table_item(id, barge_json_str(props, "VpcId", ""),
                                                        owner, json_array(), json_array(),
                                                        stack_tags(stack, logical, props)));
        } else if (!strcmp(type, "AWS::EC2::SecurityGroup")) {
            _cleanup_free_ char *gen = barge_xasprintf(
                "%s-%s-%.12s", barge_json_str(stack, "StackName", ""), logical, id_tail(id));
            json_t *egress = json_object_get(props, "SecurityGroupEgress");
            json_array_append_new(
                v->groups,
                group_item(id, barge_json_str(props, "GroupName", gen),
                           barge_json_str(props, "GroupDescription", ""),
                           barge_json_str(props, "VpcId", ""), owner,
                           permissions(json_object_get(props, "SecurityGroupIngress"), false),
                           json_array_size(egress) ? permissions(egress, true) : NULL,
                           stack_tags(stack, logical, props)));
        }
    }
}

/* Subnets, and what a stack put into route tables and security groups
 * (which another stack may have made). */
static void add_parts(struct barge_server *srv, const json_t *stack, struct view *v)
{
    const json_t *res = json_object_get(stack, "resources");
    const char *logical;
    json_t *e;
    json_object_foreach((json_t *)res, logical, e)
    {
        if (!standing(e))
            continue;
        const char *type = barge_json_str(e, "type", ""), *id = barge_json_str(e, "physical", "");
        const json_t *props = json_object_get(e, "props");
        if (!strcmp(type, "AWS::EC2::Subnet")) {
            const char *vpc = barge_json_str(props, "VpcId", "");
            json_array_append_new(
                v->subnets,
                subnet_item(
                    srv, id, vpc, barge_json_str(props, "CidrBlock", ""),
                    barge_json_str(props, "AvailabilityZone", ""), false,
                    json_is_true(json_object_get(props, "MapPublicIpOnLaunch")) ||
                        barge_streq(barge_json_str(props, "MapPublicIpOnLaunch", ""), "true"),
                    stack_tags(stack, logical, props)));
        } else if (!strcmp(type, "AWS::EC2::Route")) {
            json_t *table =
                find_by(v->tables, "RouteTableId", barge_json_str(props, "RouteTableId", ""));
            if (!table)
                continue;
            json_t *r = json_pack("{s:s, s:s}", "State", "active", "Origin", "CreateRoute");
            static const char *const keep[] = {"DestinationCidrBlock",
                                               "DestinationIpv6CidrBlock",
                                               "GatewayId",
                                               "NatGatewayId",
                                               "TransitGatewayId",
                                               "VpcPeeringConnectionId",
                                               "NetworkInterfaceId",
                                               "InstanceId"};
            for (size_t i = 0; i < BARGE_ARRAY_SIZE(keep); i++)
                if (json_is_string(json_object_get(props, keep[i])))
                    json_object_set(r, keep[i], json_object_get(props, keep[i]));
            json_array_append_new(json_object_get(table, "Routes"), r);
        } else if (!strcmp(type, "AWS::EC2::SubnetRouteTableAssociation")) {
            const char *rtb = barge_json_str(props, "RouteTableId", "");
            json_t *table = find_by(v->tables, "RouteTableId", rtb);
            if (table)
                json_array_append_new(json_object_get(table, "Associations"),
                                      json_pack("{s:b, s:s, s:s, s:s, s:{s:s}}", "Main", false,
                                                "RouteTableAssociationId", id, "RouteTableId", rtb,
                                                "SubnetId", barge_json_str(props, "SubnetId", ""),
                                                "AssociationState", "State", "associated"));
        } else if (!strcmp(type, "AWS::EC2::SecurityGroupIngress") ||
                   !strcmp(type, "AWS::EC2::SecurityGroupEgress")) {
            bool egress = !strcmp(type, "AWS::EC2::SecurityGroupEgress");
            json_t *group = find_by(v->groups, "GroupId", barge_json_str(props, "GroupId", ""));
            if (group)
                json_array_append_new(
                    json_object_get(group, egress ? "IpPermissionsEgress" : "IpPermissions"),
                    permission(props, egress));
        }
    }
}

static int add_stack_cb(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(doc, "StackStatus", ""), "DELETE_COMPLETE"))
        json_array_append(ud, doc);
    return 0;
}

static int gather(struct barge_server *srv, struct view *v, struct barge_error **err)
{
    v->vpcs = json_array();
    v->subnets = json_array();
    v->tables = json_array();
    v->groups = json_array();
    add_default_vpc(srv, v);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *stacks = json_array();
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, CFN_KIND_STACK, "", NULL, false, 0, add_stack_cb, stacks, err) < 0)
        return -1;
    size_t i;
    json_t *x;
    json_array_foreach(stacks, i, x) add_containers(srv, x, v);
    json_array_foreach(stacks, i, x) add_parts(srv, x, v);
    /* Every table has its VPC's local route first. */
    json_array_foreach(v->tables, i, x)
    {
        json_t *routes = json_object_get(x, "Routes");
        json_t *vpc = find_by(v->vpcs, "VpcId", barge_json_str(x, "VpcId", ""));
        if (vpc && !find_by(routes, "GatewayId", "local"))
            json_array_insert_new(routes, 0, local_route(barge_json_str(vpc, "CidrBlock", "")));
    }
    return 0;
}

/* --- filters ------------------------------------------------------------- */

/* What a filter name reads of an item: a path of member names, through lists. */
struct filter_def {
    const char *name;
    const char *path;
};

static const struct filter_def vpc_filters[] = {
    {"vpc-id", "VpcId"},
    {"cidr", "CidrBlock"},
    {"cidr-block-association.cidr-block", "CidrBlockAssociationSet.CidrBlock"},
    {"dhcp-options-id", "DhcpOptionsId"},
    {"is-default", "IsDefault"},
    {"isDefault", "IsDefault"},
    {"owner-id", "OwnerId"},
    {"state", "State"},
    {NULL, NULL},
};

static const struct filter_def subnet_filters[] = {
    {"subnet-id", "SubnetId"},
    {"vpc-id", "VpcId"},
    {"vpcId", "VpcId"},
    {"availability-zone", "AvailabilityZone"},
    {"availabilityZone", "AvailabilityZone"},
    {"availability-zone-id", "AvailabilityZoneId"},
    {"cidr-block", "CidrBlock"},
    {"cidr", "CidrBlock"},
    {"cidrBlock", "CidrBlock"},
    {"default-for-az", "DefaultForAz"},
    {"defaultForAz", "DefaultForAz"},
    {"map-public-ip-on-launch", "MapPublicIpOnLaunch"},
    {"owner-id", "OwnerId"},
    {"state", "State"},
    {"subnet-arn", "SubnetArn"},
    {NULL, NULL},
};

static const struct filter_def table_filters[] = {
    {"route-table-id", "RouteTableId"},
    {"vpc-id", "VpcId"},
    {"association.subnet-id", "Associations.SubnetId"},
    {"association.route-table-id", "Associations.RouteTableId"},
    {"association.route-table-association-id", "Associations.RouteTableAssociationId"},
    {"association.main", "Associations.Main"},
    {"owner-id", "OwnerId"},
    {"route.destination-cidr-block", "Routes.DestinationCidrBlock"},
    {"route.gateway-id", "Routes.GatewayId"},
    {"route.nat-gateway-id", "Routes.NatGatewayId"},
    {"route.transit-gateway-id", "Routes.TransitGatewayId"},
    {"route.state", "Routes.State"},
    {"route.origin", "Routes.Origin"},
    {NULL, NULL},
};

static const struct filter_def group_filters[] = {
    {"group-id", "GroupId"},
    {"group-name", "GroupName"},
    {"description", "Description"},
    {"vpc-id", "VpcId"},
    {"owner-id", "OwnerId"},
    {"ip-permission.protocol", "IpPermissions.IpProtocol"},
    {"ip-permission.cidr", "IpPermissions.IpRanges.CidrIp"},
    {"ip-permission.group-id", "IpPermissions.UserIdGroupPairs.GroupId"},
    {"egress.ip-permission.protocol", "IpPermissionsEgress.IpProtocol"},
    {"egress.ip-permission.cidr", "IpPermissionsEgress.IpRanges.CidrIp"},
    {NULL, NULL},
};

static const struct filter_def vgw_filters[] = {
    {"vpn-gateway-id", "VpnGatewayId"},
    {"attachment.vpc-id", "VpcAttachments.VpcId"},
    {"attachment.state", "VpcAttachments.State"},
    {"state", "State"},
    {"type", "Type"},
    {"availability-zone", "AvailabilityZone"},
    {"amazon-side-asn", "AmazonSideAsn"},
    {NULL, NULL},
};

static const struct filter_def az_filters[] = {
    {"zone-name", "ZoneName"},     {"zone-id", "ZoneId"},
    {"region-name", "RegionName"}, {"state", "State"},
    {"zone-type", "ZoneType"},     {"opt-in-status", "OptInStatus"},
    {"group-name", "GroupName"},   {NULL, NULL},
};

static const struct filter_def region_filters[] = {
    {"region-name", "RegionName"},
    {"endpoint", "Endpoint"},
    {"opt-in-status", "OptInStatus"},
    {NULL, NULL},
};

/* Collects the scalar values at path under node, as text. */
static void values_at(const json_t *node, const char *path, json_t *out)
{
    if (json_is_array(node)) {
        size_t i;
        json_t *x;
        json_array_foreach(node, i, x) values_at(x, path, out);
        return;
    }
    if (!*path) {
        if (json_is_string(node))
            json_array_append_new(out, json_string(json_string_value(node)));
        else if (json_is_boolean(node))
            json_array_append_new(out, json_string(json_is_true(node) ? "true" : "false"));
        else if (json_is_integer(node))
            json_array_append_new(out, json_sprintf("%lld", (long long)json_integer_value(node)));
        return;
    }
    const char *dot = strchr(path, '.');
    _cleanup_free_ char *head =
        dot ? barge_xstrndup(path, (size_t)(dot - path)) : barge_xstrdup(path);
    const json_t *child = json_object_get(node, head);
    if (child)
        values_at(child, dot ? dot + 1 : "", out);
}

/* The values filter f reads of item (a new array), or NULL for an unknown
 * filter name. */
static json_t *filter_values(const struct filter_def *defs, const char *name, const json_t *item)
{
    json_t *out = json_array();
    if (barge_str_has_prefix(name, "tag:")) {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(item, "Tags"), i, t)
        {
            if (barge_streq(barge_json_str(t, "Key", NULL), name + 4))
                json_array_append_new(out, json_string(barge_json_str(t, "Value", "")));
        }
        return out;
    }
    if (!strcmp(name, "tag-key") || !strcmp(name, "tag-value")) {
        values_at(json_object_get(item, "Tags"), name[4] == 'k' ? "Key" : "Value", out);
        return out;
    }
    for (const struct filter_def *d = defs; d->name; d++) {
        if (!strcmp(d->name, name)) {
            values_at(item, d->path, out);
            return out;
        }
    }
    json_decref(out);
    return NULL;
}

static int check_filters(const struct filter_def *defs, const json_t *filters,
                         struct barge_error **err)
{
    size_t i;
    json_t *f;
    json_array_foreach(filters, i, f)
    {
        const char *name = barge_json_str(f, "Name", NULL);
        if (!name)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterValue",
                                        "The filter 'null' is invalid");
        _cleanup_json_ json_t *probe = filter_values(defs, name, NULL);
        if (!probe)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterValue",
                                        "The filter '%s' is invalid", name);
    }
    return 0;
}

/* Filters are joined with AND, the values of one with OR; values may hold
 * the wildcards * and ?. */
static bool matches(const struct filter_def *defs, const json_t *filters, const json_t *item)
{
    size_t i;
    json_t *f;
    json_array_foreach(filters, i, f)
    {
        _cleanup_json_ json_t *have = filter_values(defs, barge_json_str(f, "Name", ""), item);
        bool any = false;
        size_t j, k;
        json_t *want, *h;
        json_array_foreach(json_object_get(f, "Values"), j, want)
        {
            json_array_foreach(have, k, h)
            {
                if (fnmatch(json_string_value(want), json_string_value(h), 0) == 0)
                    any = true;
            }
        }
        if (!any)
            return false;
    }
    return true;
}

/* What one Describe call selects: its ids, and how EC2 names a malformed
 * or a missing one. */
struct select {
    const char *list_key;  /* output member */
    const char *ids_key;   /* input member with ids */
    const char *id_member; /* the items' member the ids name */
    const char *prefix;    /* ids start with it (NULL: any) */
    const char *malformed; /* error code of an id without the prefix */
    const char *missing;   /* error code of an unknown id */
    const char *missing_fmt;
    const struct filter_def *filters;
};

static int select_items(const struct select *s, const json_t *items, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const json_t *filters = json_object_get(in, "Filters");
    if (check_filters(s->filters, filters, err) < 0)
        return -1;
    if (json_is_true(json_object_get(in, "DryRun")))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "DryRunOperation",
                                    "Request would have succeeded, but DryRun flag is set.");
    const json_t *ids = json_object_get(in, s->ids_key);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        const char *text = json_string_value(id);
        if (s->prefix && !barge_str_has_prefix(text, s->prefix))
            return barge_error_set_type(err, BARGE_ERR_INVALID, s->malformed, "Invalid id: \"%s\"",
                                        text);
        if (!find_by((json_t *)items, s->id_member, text))
            return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, s->missing, s->missing_fmt, text);
    }
    json_t *list = json_array();
    json_array_foreach(items, i, id)
    {
        bool listed = !json_array_size(ids);
        size_t j;
        json_t *want;
        json_array_foreach(ids, j, want) if (barge_streq(json_string_value(want),
                                                         barge_json_str(id, s->id_member, "")))
            listed = true;
        if (listed && matches(s->filters, filters, id))
            json_array_append(list, id);
    }
    *out = json_pack("{s:o}", s->list_key, list);
    return 0;
}

/* --- operations ---------------------------------------------------------- */

static int describe(struct barge_api_ctx *ctx, const struct select *s,
                    json_t *(*pick)(struct view *), json_t *in, json_t **out,
                    struct barge_error **err)
{
    struct view v = {0};
    int rc = gather(ctx->srv, &v, err);
    if (rc == 0)
        rc = select_items(s, pick(&v), in, out, err);
    view_release(&v);
    return rc;
}

static json_t *pick_vpcs(struct view *v)
{
    return v->vpcs;
}

static json_t *pick_subnets(struct view *v)
{
    return v->subnets;
}

static json_t *pick_tables(struct view *v)
{
    return v->tables;
}

static json_t *pick_groups(struct view *v)
{
    return v->groups;
}

static int describe_vpcs(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    static const struct select s = {.list_key = "Vpcs",
                                    .ids_key = "VpcIds",
                                    .id_member = "VpcId",
                                    .prefix = "vpc-",
                                    .malformed = "InvalidVpcID.Malformed",
                                    .missing = "InvalidVpcID.NotFound",
                                    .missing_fmt = "The vpc ID '%s' does not exist",
                                    .filters = vpc_filters};
    return describe(ctx, &s, pick_vpcs, in, out, err);
}

static int describe_subnets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    static const struct select s = {.list_key = "Subnets",
                                    .ids_key = "SubnetIds",
                                    .id_member = "SubnetId",
                                    .prefix = "subnet-",
                                    .malformed = "InvalidSubnetID.Malformed",
                                    .missing = "InvalidSubnetID.NotFound",
                                    .missing_fmt = "The subnet ID '%s' does not exist",
                                    .filters = subnet_filters};
    return describe(ctx, &s, pick_subnets, in, out, err);
}

static int describe_route_tables(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    static const struct select s = {.list_key = "RouteTables",
                                    .ids_key = "RouteTableIds",
                                    .id_member = "RouteTableId",
                                    .prefix = "rtb-",
                                    .malformed = "InvalidRouteTableID.Malformed",
                                    .missing = "InvalidRouteTableID.NotFound",
                                    .missing_fmt = "The routeTable ID '%s' does not exist",
                                    .filters = table_filters};
    return describe(ctx, &s, pick_tables, in, out, err);
}

static int describe_security_groups(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    static const struct select by_id = {.list_key = "SecurityGroups",
                                        .ids_key = "GroupIds",
                                        .id_member = "GroupId",
                                        .prefix = "sg-",
                                        .malformed = "InvalidGroupId.Malformed",
                                        .missing = "InvalidGroup.NotFound",
                                        .missing_fmt = "The security group '%s' does not exist",
                                        .filters = group_filters};
    static const struct select by_name = {.list_key = "SecurityGroups",
                                          .ids_key = "GroupNames",
                                          .id_member = "GroupName",
                                          .missing = "InvalidGroup.NotFound",
                                          .missing_fmt = "The security group '%s' does not exist",
                                          .filters = group_filters};
    if (json_array_size(json_object_get(in, "GroupIds")) &&
        json_array_size(json_object_get(in, "GroupNames")))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterCombination",
                                    "GroupIds and GroupNames cannot be given together");
    return describe(ctx, json_array_size(json_object_get(in, "GroupNames")) ? &by_name : &by_id,
                    pick_groups, in, out, err);
}

static int describe_vpn_gateways(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    /* barge records no VPN gateways: none to show, and any id is unknown. */
    static const struct select s = {.list_key = "VpnGateways",
                                    .ids_key = "VpnGatewayIds",
                                    .id_member = "VpnGatewayId",
                                    .prefix = "vgw-",
                                    .malformed = "InvalidVpnGatewayID.Malformed",
                                    .missing = "InvalidVpnGatewayID.NotFound",
                                    .missing_fmt = "The vpnGateway ID '%s' does not exist",
                                    .filters = vgw_filters};
    _cleanup_json_ json_t *none = json_array();
    return select_items(&s, none, in, out, err);
}

static int describe_availability_zones(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    static const struct select s = {.list_key = "AvailabilityZones",
                                    .ids_key = "ZoneNames",
                                    .id_member = "ZoneName",
                                    .missing = "InvalidParameterValue",
                                    .missing_fmt = "Invalid availability zone: [%s]",
                                    .filters = az_filters};
    const char *region = barge_server_region(ctx->srv);
    _cleanup_json_ json_t *zones = json_array();
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(az_letters); i++) {
        _cleanup_free_ char *name = barge_xasprintf("%s%s", region, az_letters[i]);
        json_array_append_new(
            zones, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[]}", "ZoneName", name,
                             "ZoneId", name, "RegionName", region, "State", "available", "ZoneType",
                             "availability-zone", "OptInStatus", "opt-in-not-required", "GroupName",
                             region, "NetworkBorderGroup", region, "Messages"));
    }
    return select_items(&s, zones, in, out, err);
}

static int describe_regions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    static const struct select s = {.list_key = "Regions",
                                    .ids_key = "RegionNames",
                                    .id_member = "RegionName",
                                    .missing = "InvalidParameterValue",
                                    .missing_fmt = "Invalid region: %s",
                                    .filters = region_filters};
    _cleanup_json_ json_t *names = NULL;
    if (barge_store_regions(ctx->srv->store, &names, err) < 0)
        return -1;
    const char *mine = barge_server_region(ctx->srv);
    bool listed = false;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) listed |= barge_streq(json_string_value(n), mine);
    if (!listed)
        json_array_append_new(names, json_string(mine));
    _cleanup_json_ json_t *regions = json_array();
    json_array_foreach(names, i, n)
    {
        _cleanup_free_ char *endpoint =
            barge_xasprintf("ec2.%s.amazonaws.com", json_string_value(n));
        json_array_append_new(regions, json_pack("{s:O, s:s, s:s}", "RegionName", n, "Endpoint",
                                                 endpoint, "OptInStatus", "opt-in-not-required"));
    }
    return select_items(&s, regions, in, out, err);
}

static const struct barge_api_op ec2_ops[] = {
    {"DescribeVpcs", describe_vpcs},
    {"DescribeSubnets", describe_subnets},
    {"DescribeRouteTables", describe_route_tables},
    {"DescribeSecurityGroups", describe_security_groups},
    {"DescribeVpnGateways", describe_vpn_gateways},
    {"DescribeAvailabilityZones", describe_availability_zones},
    {"DescribeRegions", describe_regions},
    {NULL, NULL},
};

static const struct barge_api_op *const ec2_op_tables[] = {ec2_ops, NULL};

const struct barge_api_service barge_api_ec2 = {
    .model = "ec2",
    .message_key = "Message",
    .invalid_type = "InvalidParameterValue",
    .client_type = "InvalidParameterValue",
    .server_type = "InternalError",
    .not_found_type = "InvalidParameterValue",
    .op_tables = ec2_op_tables,
};
