# One execution role, with one inline policy that names every resource it may touch. No AWS managed policy is
# attached: AWSLambdaBasicExecutionRole alone would allow writing to every log group in the account.

locals {
  mwaa_direct = var.mwaa_environment != null && var.assume_role_arn == null
  # MWAA authorizes InvokeRestApi on the Airflow role the caller acts as, CreateCliToken on the environment.
  mwaa_invoke_rest_api_arn = "arn:${local.partition}:airflow:${local.region}:${local.account_id}:role/${coalesce(var.mwaa_environment, "-")}/${var.mwaa_airflow_role}"
  mwaa_environment_arn     = "arn:${local.partition}:airflow:${local.region}:${local.account_id}:environment/${coalesce(var.mwaa_environment, "-")}"

  # The secret's own region: Secrets Manager decrypts it with KMS there.
  password_secret_region = try(split(":", var.password_secret_arn)[3], local.region)

  trigger_queue_arn     = local.create_trigger_queue ? one(aws_sqs_queue.trigger[*].arn) : try(var.sqs_trigger.existing_queue.arn, null)
  trigger_queue_kms_key = local.create_trigger_queue ? var.queue_kms_key_arn : try(var.sqs_trigger.existing_queue.kms_key_arn, null)

  on_failure_service = local.on_failure_enabled ? (local.create_on_failure_queue ? "sqs" : split(":", var.on_failure_destination.arn)[2]) : null
  on_failure_region  = local.on_failure_enabled ? (local.create_on_failure_queue ? local.region : split(":", var.on_failure_destination.arn)[3]) : null
  on_failure_kms_key = local.create_on_failure_queue ? var.queue_kms_key_arn : try(var.on_failure_destination.kms_key_arn, null)

  # VPC attachment: the subnets and security groups Lambda creates the function's network interfaces with, and
  # those interfaces, whose ids Lambda picks (network-interface/* names the resource type, in this account and region).
  vpc_subnet_arns           = var.vpc_config == null ? [] : [for id in var.vpc_config.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"]
  vpc_security_group_arns   = var.vpc_config == null ? [] : [for id in var.vpc_config.security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"]
  vpc_network_interface_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"
}

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "LambdaInThisAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # Confused-deputy guard: only Lambda acting for this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.function_name
  description          = "Execution role of the dag-trigger Lambda ${var.function_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

data "aws_iam_policy_document" "execution" {
  # Its own log group only (the module creates the group, so no logs:CreateLogGroup).
  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # MWAA in this account, through InvokeRestApi: only as the one Airflow role, in the one environment.
  dynamic "statement" {
    for_each = local.mwaa_direct && var.mwaa_transport == "invoke_rest_api" ? [local.mwaa_invoke_rest_api_arn] : []
    content {
      sid       = "InvokeAirflowRestApi"
      effect    = "Allow"
      actions   = ["airflow:InvokeRestApi"]
      resources = [statement.value]
    }
  }

  # MWAA in this account, through the CLI-token path: a token for the one environment.
  dynamic "statement" {
    for_each = local.mwaa_direct && var.mwaa_transport == "cli_token" ? [local.mwaa_environment_arn] : []
    content {
      sid       = "CreateAirflowCliToken"
      effect    = "Allow"
      actions   = ["airflow:CreateCliToken"]
      resources = [statement.value]
    }
  }

  # MWAA elsewhere: only the one role that holds the MWAA permission; none on this role.
  dynamic "statement" {
    for_each = var.assume_role_arn == null ? [] : [var.assume_role_arn]
    content {
      sid       = "AssumeAirflowRole"
      effect    = "Allow"
      actions   = ["sts:AssumeRole"]
      resources = [statement.value]
    }
  }

  # Self-managed Airflow: the one secret holding the password.
  dynamic "statement" {
    for_each = var.password_secret_arn == null ? [] : [var.password_secret_arn]
    content {
      sid       = "ReadAirflowPassword"
      effect    = "Allow"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }

  # ... and its customer managed key, only as Secrets Manager uses it for that secret.
  dynamic "statement" {
    for_each = var.password_secret_kms_key_arn == null ? [] : [var.password_secret_kms_key_arn]
    content {
      sid       = "DecryptAirflowPassword"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.password_secret_region}.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:SecretARN"
        values   = [var.password_secret_arn]
      }
    }
  }

  # The SQS trigger: what the event source mapping does with the role (AWSLambdaSQSQueueExecutionRole's three
  # actions), on that queue only.
  dynamic "statement" {
    for_each = local.sqs_enabled ? [local.trigger_queue_arn] : []
    content {
      sid       = "ConsumeTriggerQueue"
      effect    = "Allow"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.trigger_queue_kms_key == null ? [] : [local.trigger_queue_kms_key]
    content {
      sid       = "DecryptTriggerQueue"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.amazonaws.com"]
      }
    }
  }

  # Asynchronous events that failed every attempt: Lambda sends them to the destination with this role.
  dynamic "statement" {
    for_each = local.on_failure_service == "sqs" ? [local.on_failure_destination] : []
    content {
      sid       = "SendToOnFailureQueue"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.on_failure_service == "sns" ? [local.on_failure_destination] : []
    content {
      sid       = "PublishToOnFailureTopic"
      effect    = "Allow"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.on_failure_service != null && local.on_failure_kms_key != null ? [local.on_failure_kms_key] : []
    content {
      sid       = "EncryptOnFailureMessages"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["${coalesce(local.on_failure_service, "sqs")}.${coalesce(local.on_failure_region, local.region)}.amazonaws.com"]
      }
    }
  }

  # X-Ray's put actions take no resource (IAM allows only "*" for them).
  dynamic "statement" {
    for_each = var.tracing_enabled ? ["*"] : []
    content {
      sid       = "WriteTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  # VPC attachment (vpc_config): Lambda creates, reuses and deletes the function's network interfaces with this
  # role. CreateNetworkInterface is authorized on the new interface (its id does not exist yet, hence
  # network-interface/*), on its subnet and on each of its security groups: only the given ones are listed. Its
  # network-interface resource offers no ec2:Subnet key for this action; the subnet ARNs scope it instead.
  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]
    content {
      sid       = "CreateNetworkInterfacesInVpc"
      effect    = "Allow"
      actions   = ["ec2:CreateNetworkInterface"]
      resources = concat(local.vpc_subnet_arns, local.vpc_security_group_arns, [local.vpc_network_interface_arn])
    }
  }

  # Deleting an interface and moving its secondary private addresses: only interfaces in the given subnets.
  # ec2:Subnet (the interface's subnet ARN) is a condition key of network-interface for all three actions in
  # the Service Authorization Reference; these actions take no subnet or security-group resource.
  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]
    content {
      sid       = "ManageNetworkInterfacesInVpc"
      effect    = "Allow"
      actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      resources = [local.vpc_network_interface_arn]

      condition {
        test     = "ArnEquals"
        variable = "ec2:Subnet"
        values   = local.vpc_subnet_arns
      }
    }
  }

  # EC2's Describe actions support no resource-level permissions (IAM accepts only "*" for them, like X-Ray's
  # puts above): read-only, and only with vpc_config.
  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : ["*"]
    content {
      sid       = "DescribeVpcNetwork"
      effect    = "Allow"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "dag-trigger"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.execution.json
}
