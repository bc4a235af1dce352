# S3 bucket notification -> Lambda -> MWAA (InvokeRestApi), all in one account and region.
#
# The function is configured by environment variables (one route); the module adds MWAA_ENVIRONMENT and
# MWAA_TRANSPORT from mwaa_environment, which also grants airflow:InvokeRestApi on
# arn:aws:airflow:REGION:ACCOUNT:role/ENVIRONMENT/AIRFLOW_ROLE and nothing else of MWAA.

module "dag_trigger" {
  source = "../../modules/aws-lambda"

  function_name     = var.function_name
  mwaa_environment  = var.mwaa_environment
  mwaa_airflow_role = var.mwaa_airflow_role

  # The route: the same bucket, prefix and suffix as the notification, so nothing else triggers the DAG.
  environment_variables = { for name, value in {
    DAG_ID         = var.dag_id
    TRIGGER_BUCKET = var.bucket
    TRIGGER_PREFIX = var.key_prefix
    TRIGGER_SUFFIX = var.key_suffix
  } : name => value if value != null }

  # Replaces the bucket's whole notification configuration (one per bucket).
  s3_trigger = {
    bucket        = var.bucket
    filter_prefix = var.key_prefix
    filter_suffix = var.key_suffix
  }
}
