variable "aws_region" {
  type        = string
  description = "The region of the bucket, the topic, the queue, the function and the MWAA environment."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region such as eu-west-1."
  }
}

variable "function_name" {
  type        = string
  description = "The Lambda function's name; the topic (NAME-uploads), the queues (NAME-trigger, NAME-trigger-dlq) and the role are named after it."
  default     = "dag-trigger"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.function_name))
    error_message = "function_name must be 1 to 56 letters, digits, hyphens and underscores."
  }
}

variable "bucket" {
  type        = string
  description = "The existing bucket whose new objects trigger the DAG. Its notification configuration is replaced by the one to the topic (see README); other consumers can subscribe to the topic instead."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be a bucket name, not an ARN or s3:// URL."
  }
}

variable "key_prefix" {
  type        = string
  description = "Only objects whose key starts with this are published (e.g. incoming/); null: any key."
  default     = null
}

variable "key_suffix" {
  type        = string
  description = "Only objects whose key ends with this are published (e.g. .csv); null: any key."
  default     = null
}

variable "topic_kms_key_arn" {
  type        = string
  description = "A customer managed KMS key to encrypt the topic with. Its key policy must let s3.amazonaws.com use it (kms:GenerateDataKey*, kms:Decrypt), or S3 cannot publish; the AWS managed alias/aws/sns key never can. null: the topic is not encrypted at rest by SNS (the messages are S3 event notifications: bucket, key, size, etag)."
  default     = null

  validation {
    condition     = var.topic_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.topic_kms_key_arn))
    error_message = "topic_kms_key_arn must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID."
  }
}

variable "mwaa_environment" {
  type        = string
  description = "The MWAA environment's name, in this account and region."

  validation {
    condition     = can(regex("^[a-zA-Z][0-9a-zA-Z_-]{0,79}$", var.mwaa_environment))
    error_message = "mwaa_environment must be an MWAA environment name (a letter, then letters, digits, hyphens and underscores)."
  }
}

variable "mwaa_airflow_role" {
  type        = string
  description = "The Airflow role the function acts as through InvokeRestApi: User (the least that may create DAG runs), Op or Admin."
  default     = "User"

  validation {
    condition     = contains(["User", "Op", "Admin"], var.mwaa_airflow_role)
    error_message = "mwaa_airflow_role must be User, Op or Admin."
  }
}

variable "dag_id" {
  type        = string
  description = "The DAG every matching object triggers, with the object in its conf."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,250}$", var.dag_id))
    error_message = "dag_id must be an Airflow DAG id: letters, digits, dots, hyphens and underscores."
  }
}

variable "max_receive_count" {
  type        = number
  description = "Receives of a message (each a batch that reported it failed) before it moves to the dead-letter queue."
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be from 1 to 1000."
  }
}

variable "maximum_concurrency" {
  type        = number
  description = "The most concurrent invocations the queue may cause (at most the module's reserved concurrency, 10): a burst of uploads waits in the queue instead of flooding MWAA."
  default     = 5

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 10
    error_message = "maximum_concurrency must be from 2 to 10 (the function's reserved concurrency)."
  }
}
