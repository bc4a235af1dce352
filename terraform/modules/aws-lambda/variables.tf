# ---------------------------------------------------------------------------------------------------------------------
# The function and its code
# ---------------------------------------------------------------------------------------------------------------------

variable "function_name" {
  type        = string
  description = "The Lambda function's name. Its execution role, log group (/aws/lambda/NAME), dependencies layer, queues and EventBridge rule are named after it, so it must be unique in the account and region."

  validation {
    # Lambda allows 64; 56 leaves room for the derived names ("-s3" rule, "-trigger-dlq" queue).
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.function_name))
    error_message = "function_name must be 1 to 56 letters, digits, hyphens and underscores (Lambda's character set; the module derives longer names from it)."
  }
}

variable "source_root" {
  type        = string
  description = "The repository root the code is packaged from (shared/ and lambda_trigger/, *.py only). Default: three levels above this module, i.e. this repository."
  default     = null

  validation {
    condition     = var.source_root == null || try(length(trimspace(var.source_root)) > 0, false)
    error_message = "source_root must be a directory path, or null for this repository."
  }
}

variable "config_toml" {
  type        = string
  description = "A dag-trigger config file's text (TOML, see the project README's Configuration). Packaged as dag_trigger.toml and named by DAG_TRIGGER_CONFIG; the MWAA, assumed-role and Secrets Manager environment variables are then not set, because the file is the whole configuration. null: configure through environment_variables and the MWAA/secret inputs. The IAM inputs (mwaa_environment, assume_role_arn, password_secret_arn, ...) still decide the role's permissions: keep them equal to the file's values. Never put a password in it."
  default     = null

  validation {
    condition     = var.config_toml == null || try(length(regexall("(?m)^\\s*\\[\\s*airflow\\s*\\]", var.config_toml)) == 1, false)
    error_message = "config_toml must hold exactly one [airflow] table (and at least one [[routes]] entry)."
  }

  validation {
    condition     = var.config_toml == null || try(length(regexall("(?m)^\\s*password\\s*=", var.config_toml)) == 0, false)
    error_message = "config_toml must not hold a password: name a Secrets Manager secret in password_secret (and give its ARN as password_secret_arn)."
  }
}

variable "dependencies_layer_zip" {
  type        = string
  description = "The Lambda layer zip holding the third-party dependencies (requests, aws-lambda-powertools, aws-xray-sdk, ...; never boto3, which the runtime has) that `make package` builds. It must be built for var.runtime and var.architecture. null: build/dag-trigger-lambda-layer.zip under source_root."
  default     = null

  validation {
    condition     = var.dependencies_layer_zip == null || try(endswith(var.dependencies_layer_zip, ".zip"), false)
    error_message = "dependencies_layer_zip must be the path of a .zip file (make package writes build/dag-trigger-lambda-layer.zip)."
  }
}

variable "google_auth_layer_zip" {
  type        = string
  description = "For a function that reaches Google Cloud (Cloud Composer, Airflow behind IAP) through Workload Identity Federation: the layer zip holding google-auth and its dependencies (requirements/lambda-google-layer.txt) that `make package` builds as build/dag-trigger-lambda-google-layer.zip, published as a second layer. Built for var.runtime and var.architecture (cryptography and cffi are compiled). null (default): no such layer; a configuration that needs Google credentials is refused at plan time."
  default     = null

  validation {
    condition     = var.google_auth_layer_zip == null || try(endswith(var.google_auth_layer_zip, ".zip"), false)
    error_message = "google_auth_layer_zip must be the path of a .zip file (make package writes build/dag-trigger-lambda-google-layer.zip)."
  }
}

variable "extra_layer_arns" {
  type        = list(string)
  description = "Further Lambda layer version ARNs to add after the dependencies layer and the google-auth layer (Lambda allows 5 layers in all: 4 more, or 3 with google_auth_layer_zip)."
  default     = []

  validation {
    condition     = length(var.extra_layer_arns) <= 4
    error_message = "extra_layer_arns may hold at most 4 ARNs: Lambda allows 5 layers and the module adds one."
  }

  validation {
    condition     = alltrue([for arn in var.extra_layer_arns : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", arn))])
    error_message = "extra_layer_arns must be layer version ARNs, arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION."
  }
}

variable "runtime" {
  type        = string
  description = "The Lambda Python runtime. The code needs Python 3.11 or later (tomllib); the dependencies layer must be built for the same version."
  default     = "python3.14"

  validation {
    condition     = can(regex("^python3\\.(1[1-9])$", var.runtime))
    error_message = "runtime must be a Lambda Python runtime from python3.11 on, e.g. python3.14."
  }
}

variable "architecture" {
  type        = string
  description = "The instruction set the function runs on; the dependencies layer must be built for it (its compiled wheels differ)."
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "timeout" {
  type        = number
  description = "Seconds one invocation may run. Every event is triggered within it (the Airflow deadline is clipped to the invocation's remaining time); a created SQS queue's visibility timeout is derived from it."
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds from 1 to 900."
  }
}

variable "memory_size" {
  type        = number
  description = "Memory in MB; CPU grows with it. 256 is ample for a trigger that mostly waits on Airflow."
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "reserved_concurrent_executions" {
  type        = number
  description = "Concurrent executions reserved for (and capped at) this function, so a burst of events cannot flood Airflow or starve the account's other functions; -1 leaves it unreserved. An SQS trigger's maximum_concurrency must not exceed it."
  default     = 10

  validation {
    condition     = floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions && (var.reserved_concurrent_executions == -1 || var.reserved_concurrent_executions >= 1)
    error_message = "reserved_concurrent_executions must be -1 (unreserved) or a whole number from 1 (0 would stop the function)."
  }
}

variable "environment_variables" {
  type        = map(string)
  description = "Environment variables for the one-DAG configuration without a file: DAG_ID, TRIGGER_BUCKET, TRIGGER_PREFIX, TRIGGER_SUFFIX, AIRFLOW_URL, AIRFLOW_AUTH, AIRFLOW_USERNAME, AIRFLOW_API_VERSION, AIRFLOW_PAUSED_POLICY, AIRFLOW_DEADLINE_SECONDS, ... (see the project README). The module sets MWAA_ENVIRONMENT, MWAA_TRANSPORT, ASSUME_ROLE_ARN, ASSUME_ROLE_EXTERNAL_ID, AIRFLOW_PASSWORD_SECRET, DAG_TRIGGER_CONFIG, DAG_TRIGGER_SQS_CONCURRENCY and POWERTOOLS_SERVICE_NAME from its own inputs, so they are refused here. Anyone who can read the function's configuration can read these: no secrets."
  default     = {}

  validation {
    condition = length(setintersection(keys(var.environment_variables), [
      "MWAA_ENVIRONMENT", "MWAA_TRANSPORT", "ASSUME_ROLE_ARN", "ASSUME_ROLE_EXTERNAL_ID", "AIRFLOW_PASSWORD_SECRET",
      "DAG_TRIGGER_CONFIG", "DAG_TRIGGER_SQS_CONCURRENCY", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_TRACE_DISABLED",
    ])) == 0
    error_message = "environment_variables must not set MWAA_ENVIRONMENT, MWAA_TRANSPORT, ASSUME_ROLE_ARN, ASSUME_ROLE_EXTERNAL_ID, AIRFLOW_PASSWORD_SECRET (use mwaa_environment, mwaa_transport, assume_role_arn, assume_role_external_id, password_secret_arn: they also grant the IAM), DAG_TRIGGER_CONFIG (use config_toml), DAG_TRIGGER_SQS_CONCURRENCY (use sqs_record_concurrency) or POWERTOOLS_SERVICE_NAME/POWERTOOLS_TRACE_DISABLED (set by the module; see tracing_enabled)."
  }

  validation {
    condition     = !contains(keys(var.environment_variables), "AIRFLOW_PASSWORD")
    error_message = "environment_variables must not hold AIRFLOW_PASSWORD: a Lambda environment variable is readable by anyone allowed lambda:GetFunctionConfiguration. Put the password in Secrets Manager and give its ARN as password_secret_arn."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Logs, tracing, encryption, signing
# ---------------------------------------------------------------------------------------------------------------------

variable "log_level" {
  type        = string
  description = "The application log level Lambda passes on (logs are JSON; Powertools' Logger follows Lambda's level)."
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "log_retention_in_days" {
  type        = number
  description = "Days CloudWatch Logs keeps the function's logs (the module creates the log group, /aws/lambda/NAME)."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653 (0, never expire, is refused here on purpose)."
  }
}

variable "log_group_kms_key_arn" {
  type        = string
  description = "A KMS key to encrypt the log group with (its key policy must allow logs.REGION.amazonaws.com). null: CloudWatch Logs' own encryption at rest."
  default     = null

  validation {
    condition     = var.log_group_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.log_group_kms_key_arn))
    error_message = "log_group_kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "A KMS key to encrypt the function's environment variables with. null: Lambda's AWS managed key. The variables hold no secret either way (passwords come from Secrets Manager)."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)."
  }
}

variable "tracing_enabled" {
  type        = bool
  description = "X-Ray active tracing: each Airflow call is a subsegment. false sets tracing to PassThrough, turns Powertools' Tracer off and drops the role's X-Ray permissions."
  default     = true
}

variable "code_signing_config_arn" {
  type        = string
  description = "A Lambda code signing configuration to enforce on the function's code. null: none (the zip is built from this repository by Terraform itself)."
  default     = null

  validation {
    condition     = var.code_signing_config_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]{17}$", var.code_signing_config_arn))
    error_message = "code_signing_config_arn must be a code signing configuration ARN, arn:aws:lambda:REGION:ACCOUNT:code-signing-config:csc-..."
  }
}

variable "permissions_boundary_arn" {
  type        = string
  description = "A permissions boundary (managed policy ARN) for the execution role, if your organisation requires one."
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be a managed policy ARN, arn:aws:iam::ACCOUNT:policy/NAME."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource the module creates that takes tags."
  default     = {}
}

# ---------------------------------------------------------------------------------------------------------------------
# Airflow: what the role may call
# ---------------------------------------------------------------------------------------------------------------------

variable "mwaa_environment" {
  type        = string
  description = "The Amazon MWAA environment to trigger, in this account and region (or, with assume_role_arn, the environment the assumed role may reach). Sets MWAA_ENVIRONMENT (without config_toml) and, without assume_role_arn, grants the MWAA permission mwaa_transport needs. null: not MWAA."
  default     = null

  validation {
    condition     = var.mwaa_environment == null || can(regex("^[a-zA-Z][0-9a-zA-Z_-]{0,79}$", var.mwaa_environment))
    error_message = "mwaa_environment must be an MWAA environment name: 1 to 80 letters, digits, hyphens and underscores, starting with a letter."
  }
}

variable "mwaa_airflow_role" {
  type        = string
  description = "The Airflow role MWAA calls Airflow as for InvokeRestApi: it is part of the IAM resource (arn:...:airflow:REGION:ACCOUNT:role/ENVIRONMENT/ROLE). Creating DAG runs needs User (the least), Op or Admin; MWAA's other default roles, Viewer and Public, cannot, so they are refused."
  default     = "User"

  validation {
    condition     = contains(["User", "Op", "Admin"], var.mwaa_airflow_role)
    error_message = "mwaa_airflow_role must be User, Op or Admin: Viewer and Public cannot create DAG runs."
  }
}

variable "mwaa_transport" {
  type        = string
  description = "How calls reach MWAA: invoke_rest_api (airflow:InvokeRestApi on the Airflow role) or cli_token (airflow:CreateCliToken on the environment; for a dag_id longer than about 50 characters, which InvokeRestApi's 64-character path cannot carry)."
  default     = "invoke_rest_api"

  validation {
    condition     = contains(["invoke_rest_api", "cli_token"], var.mwaa_transport)
    error_message = "mwaa_transport must be invoke_rest_api or cli_token."
  }
}

variable "assume_role_arn" {
  type        = string
  description = "A role (usually in the MWAA environment's account) the function assumes before calling MWAA. The function's own role then gets sts:AssumeRole on it and no MWAA permission: the assumed role holds those and must trust this module's role_arn."
  default     = null

  validation {
    condition     = var.assume_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.assume_role_arn))
    error_message = "assume_role_arn must be an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME."
  }
}

variable "assume_role_external_id" {
  type        = string
  description = "The external id the assumed role's trust policy requires (sts:ExternalId), if any."
  default     = null

  validation {
    condition     = var.assume_role_external_id == null || try(length(var.assume_role_external_id) >= 2 && length(var.assume_role_external_id) <= 1224 && can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.assume_role_external_id)), false)
    error_message = "assume_role_external_id must be 2 to 1224 letters, digits and +=,.@:/_- (STS's rule)."
  }
}

variable "password_secret_arn" {
  type        = string
  description = "Self-managed Airflow (basic or JWT auth): the Secrets Manager secret holding the password. The role may read this secret only. Sets AIRFLOW_PASSWORD_SECRET without config_toml; with it, the file's password_secret must name this secret."
  default     = null

  validation {
    condition     = var.password_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", var.password_secret_arn))
    error_message = "password_secret_arn must be a secret's complete ARN, arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX (with the six-character suffix Secrets Manager adds; aws_secretsmanager_secret.arn gives it)."
  }
}

variable "password_secret_kms_key_arn" {
  type        = string
  description = "The customer managed KMS key the password secret is encrypted with, if not Secrets Manager's AWS managed key: the role gets kms:Decrypt on it, through Secrets Manager for that secret only."
  default     = null

  validation {
    condition     = var.password_secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.password_secret_kms_key_arn))
    error_message = "password_secret_kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Network: optional VPC attachment, for an Airflow reachable only inside a VPC
# ---------------------------------------------------------------------------------------------------------------------

variable "vpc_config" {
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  description = <<-EOT
    Attach the function to a VPC: Lambda creates its network interfaces in subnet_ids (private subnets owned
    by this account, in its region, since the role's ARNs name them so; two or more Availability Zones for
    resilience) with security_group_ids (their egress must reach Airflow and the endpoints below). Needed only when the function must reach something
    that exists only inside the VPC: a self-managed Airflow's AIRFLOW_URL on a private address or internal
    load balancer, or a private MWAA web server with mwaa_transport = "cli_token" (which POSTs to the web
    server itself). MWAA's InvokeRestApi is an AWS API and needs no VPC. Once attached, the function reaches
    AWS APIs only through the VPC: give the subnets a NAT gateway, or interface endpoints for what the
    configuration uses: airflow.env (InvokeRestApi, CreateCliToken), sts (assume_role_arn), secretsmanager
    (password_secret_arn), xray (tracing_enabled), logs (only if code calls the CloudWatch Logs API). The
    role then gets ec2:CreateNetworkInterface on these subnets and security groups, the interface
    delete/assign/unassign actions on interfaces in these subnets, and ec2:DescribeNetworkInterfaces and
    ec2:DescribeSubnets, which take no resource, on "*". null (default): no VPC.
  EOT
  default     = null

  validation {
    condition = var.vpc_config == null || try(
      length(var.vpc_config.subnet_ids) > 0 && length(var.vpc_config.security_group_ids) > 0,
    false)
    error_message = "vpc_config needs at least one subnet id and one security group id (Lambda refuses one without the other)."
  }

  validation {
    condition = var.vpc_config == null || try(
      alltrue([for id in var.vpc_config.subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))]) &&
      alltrue([for id in var.vpc_config.security_group_ids : can(regex("^sg-[0-9a-f]+$", id))]),
    false)
    error_message = "vpc_config.subnet_ids must be subnet ids (subnet-0123abcd...) and security_group_ids security group ids (sg-0123abcd...), not names or ARNs."
  }

  validation {
    condition     = var.vpc_config == null || try(length(var.vpc_config.subnet_ids) <= 16 && length(var.vpc_config.security_group_ids) <= 5, false)
    error_message = "vpc_config may name at most 16 subnets and 5 security groups (Lambda's limits)."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Failures of asynchronous invocations (S3, EventBridge and SNS invoke the function asynchronously)
# ---------------------------------------------------------------------------------------------------------------------

variable "on_failure_destination" {
  type = object({
    arn         = string
    kms_key_arn = optional(string)
  })
  description = "Where Lambda sends an asynchronous event that still failed after its 2 retries (or grew older than maximum_event_age_in_seconds): arn, an SQS queue or SNS topic ARN; kms_key_arn, its customer managed KMS key if it has one (the role gets kms:GenerateDataKey and kms:Decrypt on it, through SQS or SNS only). null: the module creates an encrypted SQS queue, NAME-on-failure, and outputs it. Not used when SQS is the only trigger (the SQS queue's dead-letter queue holds failures then)."
  default     = null

  validation {
    condition     = var.on_failure_destination == null || try(can(regex("^arn:aws[a-z-]*:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.on_failure_destination.arn)), false)
    error_message = "on_failure_destination.arn must be an SQS queue or SNS topic ARN, arn:aws:sqs:REGION:ACCOUNT:NAME or arn:aws:sns:REGION:ACCOUNT:NAME."
  }

  validation {
    condition     = var.on_failure_destination == null || try(var.on_failure_destination.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.on_failure_destination.kms_key_arn)), false)
    error_message = "on_failure_destination.kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)."
  }
}

variable "maximum_event_age_in_seconds" {
  type        = number
  description = "How long Lambda keeps retrying an asynchronous event before it goes to the on-failure destination."
  default     = 21600

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 21600
    error_message = "maximum_event_age_in_seconds must be from 60 to 21600 (6 hours)."
  }
}

variable "queue_kms_key_arn" {
  type        = string
  description = "A customer managed KMS key for the SQS queues the module creates (the on-failure queue, the SQS trigger's queue and its dead-letter queue); the role gets the KMS permissions it needs on them, through SQS only. Its key policy must also let whatever sends to the trigger queue (e.g. sns.amazonaws.com) use it. null: SSE-SQS, SQS-managed encryption, which needs no key policy."
  default     = null

  validation {
    condition     = var.queue_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.queue_kms_key_arn))
    error_message = "queue_kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Triggers: each optional, any combination
# ---------------------------------------------------------------------------------------------------------------------

variable "s3_trigger" {
  type = object({
    bucket        = string
    bucket_owner  = optional(string)
    events        = optional(list(string), ["s3:ObjectCreated:*"])
    filter_prefix = optional(string)
    filter_suffix = optional(string)
  })
  description = <<-EOT
    Invoke the function from an S3 event notification of this bucket (managed through this module's provider,
    so in its account; bucket_owner defaults to it).
    WARNING: a bucket has ONE notification configuration, and Terraform's aws_s3_bucket_notification owns all of
    it: applying this REPLACES every notification the bucket already has (other Lambdas, queues, topics), and
    another aws_s3_bucket_notification on the same bucket would fight this one. For a bucket that already has
    notifications, use eventbridge_trigger instead, or add this function to the bucket's existing
    aws_s3_bucket_notification yourself.
  EOT
  default     = null

  validation {
    condition     = var.s3_trigger == null || try(can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_trigger.bucket)), false)
    error_message = "s3_trigger.bucket must be a bucket name (3 to 63 lowercase letters, digits, dots and hyphens), not an ARN or s3:// URL."
  }

  validation {
    condition     = var.s3_trigger == null || try(var.s3_trigger.bucket_owner == null || can(regex("^[0-9]{12}$", var.s3_trigger.bucket_owner)), false)
    error_message = "s3_trigger.bucket_owner must be a 12-digit AWS account id."
  }

  validation {
    condition     = var.s3_trigger == null || try(length(var.s3_trigger.events) > 0 && alltrue([for e in var.s3_trigger.events : can(regex("^s3:[A-Za-z]+(:[A-Za-z*]+)*$", e))]), false)
    error_message = "s3_trigger.events must be S3 event types such as s3:ObjectCreated:* or s3:ObjectRemoved:Delete."
  }
}

variable "eventbridge_trigger" {
  type = object({
    bucket       = string
    detail_types = optional(list(string), ["Object Created"])
    key_prefix   = optional(string)
    key_suffix   = optional(string)
  })
  description = "Invoke the function from EventBridge's S3 events for this bucket (default bus): the way to trigger from a bucket that already has a notification configuration, since it leaves that configuration alone. The bucket must send events to EventBridge (aws_s3_bucket_notification { eventbridge = true }, which you manage). key_prefix and key_suffix narrow the rule; routes filter again in the function."
  default     = null

  validation {
    condition     = var.eventbridge_trigger == null || try(can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.eventbridge_trigger.bucket)), false)
    error_message = "eventbridge_trigger.bucket must be a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)."
  }

  validation {
    condition = var.eventbridge_trigger == null || try(length(var.eventbridge_trigger.detail_types) > 0 && length(setsubtract(var.eventbridge_trigger.detail_types, [
      "Object Created", "Object Deleted", "Object Restore Initiated", "Object Restore Completed", "Object Restore Expired",
      "Object Tags Added", "Object Tags Deleted", "Object ACL Updated", "Object Storage Class Changed", "Object Access Tier Changed",
    ])) == 0, false)
    error_message = "eventbridge_trigger.detail_types must be S3's EventBridge detail types, e.g. \"Object Created\"."
  }
}

variable "sns_trigger" {
  type = object({
    topic_arn     = string
    filter_policy = optional(string)
  })
  description = "Invoke the function from an SNS topic (an S3 notification inside each message, or application messages routed by their attributes). filter_policy: an SNS filter policy (JSON) on message attributes."
  default     = null

  validation {
    condition     = var.sns_trigger == null || try(can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.sns_trigger.topic_arn)), false)
    error_message = "sns_trigger.topic_arn must be a standard SNS topic ARN, arn:aws:sns:REGION:ACCOUNT:NAME."
  }

  validation {
    condition     = var.sns_trigger == null || try(var.sns_trigger.filter_policy == null || can(jsondecode(var.sns_trigger.filter_policy)), false)
    error_message = "sns_trigger.filter_policy must be JSON (jsonencode() it)."
  }
}

variable "sqs_trigger" {
  type = object({
    existing_queue = optional(object({
      arn         = string
      kms_key_arn = optional(string)
    }))
    batch_size                         = optional(number, 10)
    maximum_batching_window_in_seconds = optional(number, 0)
    maximum_concurrency                = optional(number)
    max_receive_count                  = optional(number, 5)
    message_retention_seconds          = optional(number, 345600)
    visibility_timeout_seconds         = optional(number)
  })
  description = <<-EOT
    Consume an SQS queue (fed by S3, by S3 -> SNS, or by applications) with partial batch responses
    (ReportBatchItemFailures): only the records that may still succeed return to the queue.
    existing_queue: a queue you manage, by arn (and kms_key_arn, its customer managed KMS key if it has one);
    its visibility timeout should be at least 6 times the function timeout. Without it the module creates
    NAME-trigger, encrypted, with a dead-letter queue NAME-trigger-dlq after max_receive_count receives, and a
    visibility timeout of 6 x timeout + maximum_batching_window_in_seconds unless visibility_timeout_seconds is
    given; grant senders with an aws_sqs_queue_policy on the trigger_queue_url output.
    maximum_concurrency: the most concurrent invocations this queue may cause (2 to 1000; null: no limit but
    reserved_concurrent_executions). With SQS as the only trigger the handler is sqs_handler.
  EOT
  default     = null

  validation {
    condition     = var.sqs_trigger == null || try(var.sqs_trigger.existing_queue == null || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$", var.sqs_trigger.existing_queue.arn)), false)
    error_message = "sqs_trigger.existing_queue.arn must be a standard SQS queue ARN, arn:aws:sqs:REGION:ACCOUNT:NAME (FIFO queues are not supported)."
  }

  validation {
    condition     = try(var.sqs_trigger.existing_queue.kms_key_arn, null) == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.sqs_trigger.existing_queue.kms_key_arn))
    error_message = "sqs_trigger.existing_queue.kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)."
  }

  validation {
    condition = var.sqs_trigger == null || try(
      var.sqs_trigger.batch_size >= 1 && var.sqs_trigger.batch_size <= 10000 &&
      var.sqs_trigger.maximum_batching_window_in_seconds >= 0 && var.sqs_trigger.maximum_batching_window_in_seconds <= 300 &&
      (var.sqs_trigger.batch_size <= 10 || var.sqs_trigger.maximum_batching_window_in_seconds >= 1),
    false)
    error_message = "sqs_trigger.batch_size must be 1 to 10000 and maximum_batching_window_in_seconds 0 to 300; a batch_size over 10 needs a batching window of at least 1 second (Lambda's rule)."
  }

  validation {
    condition     = var.sqs_trigger == null || try(var.sqs_trigger.maximum_concurrency == null || (coalesce(var.sqs_trigger.maximum_concurrency, 2) >= 2 && coalesce(var.sqs_trigger.maximum_concurrency, 2) <= 1000), false)
    error_message = "sqs_trigger.maximum_concurrency must be from 2 to 1000, or null."
  }

  validation {
    condition = var.sqs_trigger == null || try(
      var.sqs_trigger.max_receive_count >= 1 && var.sqs_trigger.max_receive_count <= 1000 &&
      var.sqs_trigger.message_retention_seconds >= 60 && var.sqs_trigger.message_retention_seconds <= 1209600 &&
      coalesce(var.sqs_trigger.visibility_timeout_seconds, 0) >= 0 && coalesce(var.sqs_trigger.visibility_timeout_seconds, 0) <= 43200,
    false)
    error_message = "sqs_trigger.max_receive_count must be 1 to 1000, message_retention_seconds 60 to 1209600 (14 days) and visibility_timeout_seconds 0 to 43200."
  }
}

variable "sqs_record_concurrency" {
  type        = number
  description = "How many records of one SQS batch are triggered at once (DAG_TRIGGER_SQS_CONCURRENCY; never more than the batch). Set only with sqs_trigger."
  default     = 8

  validation {
    condition     = var.sqs_record_concurrency >= 1 && var.sqs_record_concurrency <= 64 && floor(var.sqs_record_concurrency) == var.sqs_record_concurrency
    error_message = "sqs_record_concurrency must be a whole number from 1 to 64."
  }
}
